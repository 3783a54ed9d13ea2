//! Token buckets as GCRA ("virtual scheduling"): a bucket is one number, its theoretical
//! arrival time (TAT), the instant at which it would be full again if nobody took anything.
//! Taking `n` tokens moves the TAT `n` emission intervals forward; the take conforms when the new
//! TAT is at most one bucket's worth (`capacity` intervals) ahead of now. A take that would
//! conform within `max_wait` is reserved anyway: the bucket goes into debt and the caller waits,
//! so waiting callers are served in the order they arrived.
//!
//! Times are milliseconds as `f64` on the backend's own clock. The same arithmetic runs in the
//! Redis backend's Lua script (`redis.rs`); keep the two in step.

use super::StateError;

/// Float noise tolerance, in milliseconds.
const EPSILON_MS: f64 = 1e-6;

/// The shape of a token bucket: how many tokens it holds and how fast it refills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    capacity: u32,
    refill_per_second: f64,
}

/// The outcome of [`TokenBucket::take`] (the WIT `take-result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeOutcome {
    /// The tokens were granted, now or (with `wait_ms` > 0) reserved for later.
    pub granted: bool,
    /// Granted: milliseconds to wait before proceeding. Refused: milliseconds until `cost`
    /// tokens will be there (a Retry-After hint).
    pub wait_ms: u64,
    /// Whole tokens left after this call (0 while in debt).
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

impl TokenBucket {
    /// Slowest refill accepted: one token every ~11.6 days.
    pub const MIN_REFILL_PER_SECOND: f64 = 1e-6;
    /// Fastest refill accepted.
    pub const MAX_REFILL_PER_SECOND: f64 = 1e9;

    /// A bucket of `capacity` tokens refilling at `refill_per_second`. Refuses an empty bucket
    /// and a rate that is not a number within the supported range.
    pub fn new(capacity: u32, refill_per_second: f64) -> Result<Self, StateError> {
        if capacity == 0 {
            return Err(StateError::Invalid(
                "token bucket capacity must be at least 1".into(),
            ));
        }
        if !(Self::MIN_REFILL_PER_SECOND..=Self::MAX_REFILL_PER_SECOND).contains(&refill_per_second)
        {
            return Err(StateError::Invalid(format!(
                "refill-per-second must be between {} and {}, not {refill_per_second}",
                Self::MIN_REFILL_PER_SECOND,
                Self::MAX_REFILL_PER_SECOND
            )));
        }
        Ok(Self {
            capacity,
            refill_per_second,
        })
    }

    /// Most tokens the bucket holds.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Tokens added per second.
    pub fn refill_per_second(&self) -> f64 {
        self.refill_per_second
    }

    /// Milliseconds per token.
    pub(crate) fn interval_ms(&self) -> f64 {
        1000.0 / self.refill_per_second
    }

    /// One GCRA step. `tat` is the stored arrival time (`None` for an absent key, that is a full
    /// bucket), `now` the current time on the same clock. Returns the outcome and the TAT to
    /// store (`None`: leave the key as it is).
    pub(crate) fn take(
        &self,
        tat: Option<f64>,
        now: f64,
        cost: u32,
        max_wait_ms: u64,
    ) -> (TakeOutcome, Option<f64>) {
        let interval = self.interval_ms();
        let burst = f64::from(self.capacity) * interval;
        let tat = tat.map_or(now, |t| t.max(now));
        let new_tat = tat + f64::from(cost) * interval;
        // How long until the take conforms: until the new TAT is at most one bucket ahead.
        let wait = new_tat - burst - now;
        let granted = wait <= EPSILON_MS || wait <= max_wait_ms as f64 + EPSILON_MS;
        let after = if granted { new_tat } else { tat };
        let ahead = after - now;
        let remaining = ((burst - ahead) / interval + EPSILON_MS).floor().max(0.0);
        let outcome = TakeOutcome {
            granted,
            wait_ms: ceil_ms(wait),
            remaining: remaining as u64,
            reset_ms: ceil_ms(ahead),
        };
        (outcome, granted.then_some(new_tat))
    }
}

/// Whole milliseconds, rounded up, 0 for anything not (noticeably) positive.
fn ceil_ms(ms: f64) -> u64 {
    if ms <= EPSILON_MS {
        0
    } else {
        // `as` saturates: an absurd wait reads as u64::MAX.
        (ms - EPSILON_MS).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(capacity: u32, rate: f64) -> TokenBucket {
        match TokenBucket::new(capacity, rate) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs takes at the given times, threading the stored TAT like a backend.
    fn run(b: TokenBucket, takes: &[(f64, u32, u64)]) -> Vec<TakeOutcome> {
        let mut tat = None;
        takes
            .iter()
            .map(|&(now, cost, max_wait)| {
                let (out, store) = b.take(tat, now, cost, max_wait);
                if store.is_some() {
                    tat = store;
                }
                out
            })
            .collect()
    }

    #[test]
    fn full_bucket_grants_capacity_then_refuses_with_retry_hint() {
        // 5 tokens, 10 per second: one every 100 ms.
        let out = run(bucket(5, 10.0), &[(0.0, 1, 0); 6]);
        for (i, o) in out.iter().take(5).enumerate() {
            assert!(o.granted, "take {i}");
            assert_eq!(o.wait_ms, 0);
            assert_eq!(o.remaining, 4 - i as u64);
            assert_eq!(o.reset_ms, 100 * (i as u64 + 1));
        }
        assert_eq!(
            out[5],
            TakeOutcome {
                granted: false,
                wait_ms: 100,
                remaining: 0,
                reset_ms: 500
            }
        );
    }

    #[test]
    fn refills_over_time() {
        let out = run(
            bucket(2, 10.0),
            &[(0.0, 2, 0), (50.0, 1, 0), (100.0, 1, 0), (1000.0, 1, 0)],
        );
        assert!(out[0].granted);
        assert!(!out[1].granted);
        assert_eq!(out[1].wait_ms, 50);
        assert!(out[2].granted);
        assert_eq!(out[2].remaining, 0);
        assert!(out[3].granted);
        assert_eq!(out[3].remaining, 1);
    }

    #[test]
    fn waiting_callers_reserve_in_arrival_order() {
        // 1 token, 10 per second, up to 250 ms of waiting.
        let out = run(bucket(1, 10.0), &[(0.0, 1, 250); 5]);
        let waits: Vec<_> = out.iter().map(|o| (o.granted, o.wait_ms)).collect();
        assert_eq!(
            waits,
            vec![
                (true, 0),
                (true, 100),
                (true, 200),
                (false, 300),
                (false, 300)
            ]
        );
        assert_eq!(out[2].remaining, 0);
        assert_eq!(out[2].reset_ms, 300);
    }

    #[test]
    fn cost_larger_than_capacity_needs_a_wait() {
        let out = run(bucket(2, 1.0), &[(0.0, 3, 0), (0.0, 3, 1000)]);
        assert!(!out[0].granted);
        assert_eq!(out[0].wait_ms, 1000);
        assert!(out[1].granted);
        assert_eq!(out[1].wait_ms, 1000);
    }

    #[test]
    fn zero_cost_probes_without_taking() {
        let out = run(bucket(3, 1.0), &[(0.0, 1, 0), (0.0, 0, 0)]);
        assert!(out[1].granted);
        assert_eq!(out[1].remaining, 2);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(TokenBucket::new(0, 1.0).is_err());
        assert!(TokenBucket::new(1, 0.0).is_err());
        assert!(TokenBucket::new(1, f64::NAN).is_err());
        assert!(TokenBucket::new(1, f64::INFINITY).is_err());
        assert!(TokenBucket::new(1, -1.0).is_err());
    }
}
