//! The decision for one request, over an abstract [`Store`] (the host's shared state in the
//! gateway, a fake in unit tests).

use crate::config::{Algorithm, OnLimit, Settings};
use crate::sliding;

/// The token bucket's answer (the host's `take-result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// Granted now (`wait_ms` 0) or reserved for later.
    pub granted: bool,
    /// Granted: how long to wait. Refused: how long until a token is there.
    pub wait_ms: u64,
    /// Whole tokens left.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset_ms: u64,
}

/// The shared-state operations the limiter needs.
pub trait Store {
    /// Atomic GCRA take (see the WIT `state.take`).
    fn take(
        &self,
        key: &str,
        capacity: u32,
        refill_per_second: f64,
        cost: u32,
        max_wait_ms: u64,
    ) -> Result<Take, String>;
    /// Add to a counter, creating it with this expiry.
    fn incr(&self, key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String>;
    /// A counter's value (0 when absent).
    fn get_counter(&self, key: &str) -> Result<i64, String>;
}

/// What the client is told about its quota (the `RateLimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `RateLimit-Limit`: the most requests that can be made at once.
    pub limit: u64,
    /// `RateLimit-Remaining`.
    pub remaining: u64,
    /// Milliseconds until the whole quota is back (`RateLimit-Reset`, rounded up to seconds).
    pub reset_ms: u64,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on now.
    Allow(Quota),
    /// A slot is reserved `wait_ms` from now: defer, then go on without counting again.
    Wait {
        /// The quota after the reservation.
        quota: Quota,
        /// How long to wait.
        wait_ms: u64,
    },
    /// Over the limit: 429.
    Limited {
        /// The quota.
        quota: Quota,
        /// When the same request would be admitted (possibly into the queue).
        retry_after_ms: u64,
    },
    /// The queue is full: 503.
    QueueFull {
        /// The quota.
        quota: Quota,
        /// When the same request would find room in the queue.
        retry_after_ms: u64,
    },
}

/// Decide on one request counted under `key` (already built from the request) at `now_ms`
/// (wall clock, shared by every gateway).
pub fn decide(
    settings: &Settings,
    store: &impl Store,
    key: &str,
    now_ms: u64,
) -> Result<Decision, String> {
    match settings.algorithm {
        Algorithm::TokenBucket {
            capacity,
            refill_per_second,
        } => token_bucket(settings, store, key, capacity, refill_per_second),
        Algorithm::SlidingWindow => sliding_window(settings, store, key, now_ms),
    }
}

/// The longest wait that keeps at most `max_queue` requests waiting: in a GCRA bucket with
/// cost 1, the n-th waiting request waits between n − 1 and n emission intervals. Deriving the
/// queue's length from the bucket (rather than keeping a separate counter of waiting requests)
/// is exact and cannot leak when a queued request never comes back (client gone, or the
/// gateway's deferral cap answered it).
pub fn queue_wait_bound_ms(max_queue: u64, refill_per_second: f64) -> u64 {
    let interval_ms = 1000.0 / refill_per_second;
    let bound = (max_queue as f64 * interval_ms).ceil();
    if bound >= u64::MAX as f64 {
        u64::MAX
    } else {
        bound as u64
    }
}

fn token_bucket(
    settings: &Settings,
    store: &impl Store,
    key: &str,
    capacity: u32,
    refill_per_second: f64,
) -> Result<Decision, String> {
    let (max_wait_ms, queue_bound_ms) = match settings.on_limit {
        OnLimit::Reject => (0, None),
        OnLimit::Queue {
            max_wait_ms,
            max_queue,
        } => {
            let bound = max_queue.map(|q| queue_wait_bound_ms(q, refill_per_second));
            (max_wait_ms, bound)
        }
    };
    let allowed_wait = queue_bound_ms.map_or(max_wait_ms, |b| b.min(max_wait_ms));
    let t = store.take(
        &format!("tb:{key}"),
        capacity,
        refill_per_second,
        1,
        allowed_wait,
    )?;
    let quota = Quota {
        limit: u64::from(capacity),
        remaining: t.remaining,
        reset_ms: t.reset_ms,
    };
    Ok(match (t.granted, t.wait_ms) {
        (true, 0) => Decision::Allow(quota),
        (true, wait_ms) => Decision::Wait { quota, wait_ms },
        (false, wait_ms) if wait_ms > max_wait_ms => Decision::Limited {
            quota,
            retry_after_ms: wait_ms - max_wait_ms,
        },
        // Refused although the wait was within `max_wait_ms`: the queue bound refused it.
        (false, wait_ms) => Decision::QueueFull {
            quota,
            retry_after_ms: wait_ms.saturating_sub(allowed_wait).max(1),
        },
    })
}

fn sliding_window(
    settings: &Settings,
    store: &impl Store,
    key: &str,
    now_ms: u64,
) -> Result<Decision, String> {
    let period = settings.period_ms;
    let (index, elapsed) = sliding::window(now_ms, period);
    // Long enough to be read as the previous window during the whole next one.
    let ttl = period.saturating_mul(2).saturating_add(1_000);
    let current_key = format!("sw:{index}:{key}");
    let counted = to_count(store.incr(&current_key, 1, ttl)?);
    let previous = match index.checked_sub(1) {
        Some(prev) => to_count(store.get_counter(&format!("sw:{prev}:{key}"))?),
        None => 0,
    };
    let capacity = sliding::capacity(settings.limit, previous, elapsed, period);
    if counted <= capacity {
        return Ok(Decision::Allow(Quota {
            limit: settings.limit,
            remaining: capacity - counted,
            reset_ms: sliding::reset_ms(previous, counted, elapsed, period),
        }));
    }
    // Refused requests do not count: take this one back. Admitted requests never give their
    // count back, so however many race here, at most `capacity` are admitted in this window.
    // If the undo fails the window counts one request too many, which errs on the safe side.
    let current = store.incr(&current_key, -1, ttl).map_or(counted, to_count);
    Ok(Decision::Limited {
        quota: Quota {
            limit: settings.limit,
            remaining: 0,
            reset_ms: sliding::reset_ms(previous, current, elapsed, period),
        },
        retry_after_ms: sliding::retry_after_ms(settings.limit, previous, current, elapsed, period)
            .max(1),
    })
}

fn to_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawConfig, validate};
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Counters in a map, and a token bucket that answers from a script.
    #[derive(Default)]
    struct Fake {
        counters: RefCell<HashMap<String, i64>>,
        takes: RefCell<Vec<(String, u32, u64)>>,
        answer: RefCell<Option<Take>>,
    }

    impl Store for Fake {
        fn take(
            &self,
            key: &str,
            capacity: u32,
            _refill: f64,
            _cost: u32,
            max_wait_ms: u64,
        ) -> Result<Take, String> {
            self.takes
                .borrow_mut()
                .push((key.to_owned(), capacity, max_wait_ms));
            (*self.answer.borrow()).ok_or_else(|| "backend down".to_owned())
        }
        fn incr(&self, key: &str, delta: i64, _ttl: u64) -> Result<i64, String> {
            let mut map = self.counters.borrow_mut();
            let n = map.entry(key.to_owned()).or_insert(0);
            *n += delta;
            Ok(*n)
        }
        fn get_counter(&self, key: &str) -> Result<i64, String> {
            Ok(self.counters.borrow().get(key).copied().unwrap_or(0))
        }
    }

    fn settings(json: &str) -> Settings {
        let raw: RawConfig = match serde_json::from_str(json) {
            Ok(raw) => raw,
            Err(e) => panic!("{e}"),
        };
        match validate(raw) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn take(granted: bool, wait_ms: u64) -> Option<Take> {
        Some(Take {
            granted,
            wait_ms,
            remaining: 0,
            reset_ms: 1000,
        })
    }

    #[test]
    fn queue_bound_in_emission_intervals() {
        assert_eq!(queue_wait_bound_ms(3, 5.0), 600);
        assert_eq!(queue_wait_bound_ms(1, 3.0), 334);
        assert_eq!(queue_wait_bound_ms(u64::MAX, 1e-6), u64::MAX);
    }

    #[test]
    fn token_bucket_reject_and_queue() {
        let store = Fake::default();
        let reject = settings(r#"{"limit": 5, "period": "1s", "burst": 2}"#);
        *store.answer.borrow_mut() = take(true, 0);
        assert!(matches!(
            decide(&reject, &store, "ip=a", 0),
            Ok(Decision::Allow(Quota { limit: 2, .. }))
        ));
        *store.answer.borrow_mut() = take(false, 150);
        assert!(matches!(
            decide(&reject, &store, "ip=a", 0),
            Ok(Decision::Limited {
                retry_after_ms: 150,
                ..
            })
        ));
        assert_eq!(store.takes.borrow()[0], ("tb:ip=a".into(), 2, 0));

        // 5 per second, up to 3 waiting (600 ms), at most 1 s of waiting.
        let queue = settings(
            r#"{"limit": 5, "period": "1s", "burst": 1, "on_limit": "queue",
                "max_queue": 3, "max_wait_ms": 1000}"#,
        );
        *store.answer.borrow_mut() = take(true, 400);
        assert!(matches!(
            decide(&queue, &store, "k", 0),
            Ok(Decision::Wait { wait_ms: 400, .. })
        ));
        assert_eq!(store.takes.borrow()[2].2, 600, "max wait given to take");
        *store.answer.borrow_mut() = take(false, 800);
        assert!(matches!(
            decide(&queue, &store, "k", 0),
            Ok(Decision::QueueFull {
                retry_after_ms: 200,
                ..
            })
        ));
        *store.answer.borrow_mut() = take(false, 1300);
        assert!(matches!(
            decide(&queue, &store, "k", 0),
            Ok(Decision::Limited {
                retry_after_ms: 300,
                ..
            })
        ));
        *store.answer.borrow_mut() = None;
        assert!(decide(&queue, &store, "k", 0).is_err());
    }

    #[test]
    fn sliding_window_admits_its_limit_per_window() {
        let store = Fake::default();
        let s = settings(r#"{"limit": 3, "period": "1s", "algorithm": "sliding-window"}"#);
        // Window 5 (5000..6000 ms), nothing before.
        let outcomes: Vec<_> = (0..5).map(|_| decide(&s, &store, "ip=a", 5_000)).collect();
        assert!(matches!(
            outcomes[0],
            Ok(Decision::Allow(Quota { remaining: 2, .. }))
        ));
        assert!(matches!(
            outcomes[2],
            Ok(Decision::Allow(Quota { remaining: 0, .. }))
        ));
        for o in &outcomes[3..] {
            assert!(
                matches!(o, Ok(Decision::Limited { retry_after_ms, .. }) if *retry_after_ms == 1_000 + 334),
                "{o:?}"
            );
        }
        assert_eq!(
            store.get_counter("sw:5:ip=a"),
            Ok(3),
            "refusals are not counted"
        );
        // Half way through the next window, 1.5 of the 3 carry over: 1 more fits.
        assert!(matches!(
            decide(&s, &store, "ip=a", 6_500),
            Ok(Decision::Allow(Quota { remaining: 0, .. }))
        ));
        assert!(matches!(
            decide(&s, &store, "ip=a", 6_500),
            Ok(Decision::Limited { .. })
        ));
        // Another key is independent.
        assert!(matches!(
            decide(&s, &store, "ip=b", 6_500),
            Ok(Decision::Allow(_))
        ));
    }
}
