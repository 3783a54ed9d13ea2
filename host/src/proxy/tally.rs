//! The usage tally of a gateway that follows a control plane: finished requests counted per
//! (UTC minute, route, consumer) with errors (5xx), client errors (4xx) and a latency histogram
//! (`crate::latency`). The follower takes what was counted since its last report and sends it
//! to the control plane (`crate::follow`).
//!
//! Cost on the request path: nothing when the gateway follows no control plane (the proxy holds
//! no tally and a request checks one `Option`); otherwise one uncontended lock of this worker
//! thread's shard, two map look-ups by `&str` and a few adds. A key is allocated only the first
//! time it is seen in a report period. Memory is bounded: past [`MAX_KEYS_PER_MINUTE`] distinct
//! (route, consumer) pairs in a minute, further consumers are counted as [`OTHER`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::latency::{self, BUCKETS};

/// Distinct (route, consumer) pairs kept per minute, over all shards.
pub const MAX_KEYS_PER_MINUTE: usize = 10_000;
/// The consumer that requests past the key cap are counted under.
pub const OTHER: &str = "(other)";
/// The consumer of requests that no auth plugin identified.
pub const ANONYMOUS: &str = "(anonymous)";
/// The route of requests that matched none.
pub const UNMATCHED: &str = "(unmatched)";
/// Shards: worker threads pick one each (round robin), so locks are rarely contended.
const SHARDS: usize = 16;

/// Counts of one (minute, route, consumer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Requests finished.
    pub requests: u64,
    /// Of which answered with a 5xx status.
    pub errors: u64,
    /// Of which answered with a 4xx status.
    pub client_errors: u64,
    /// Their durations, arrival to last body byte (`crate::latency` buckets).
    pub latency: [u64; BUCKETS],
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: 0,
            client_errors: 0,
            latency: [0; BUCKETS],
        }
    }
}

/// One row of a report: a (minute, route, consumer) and its counts.
#[derive(Debug, Clone)]
pub struct Row {
    /// Start of the UTC minute, Unix milliseconds.
    pub minute_ms: i64,
    /// Route name.
    pub route: Arc<str>,
    /// Consumer name.
    pub consumer: String,
    /// What was counted.
    pub counts: Counts,
}

/// One minute of one shard.
#[derive(Default)]
struct Minute {
    minute_ms: i64,
    keys: usize,
    routes: HashMap<Arc<str>, HashMap<String, Counts>>,
}

/// The tally: shards of minutes.
pub struct Tally {
    shards: Vec<Mutex<Vec<Minute>>>,
    next_shard: AtomicUsize,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally").finish_non_exhaustive()
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
            next_shard: AtomicUsize::new(0),
        }
    }
}

thread_local! {
    /// This thread's shard, picked on its first request.
    static SHARD: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The start of the current UTC minute, Unix milliseconds.
fn this_minute_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    ms - ms.rem_euclid(60_000)
}

impl Tally {
    /// Count one finished request.
    pub fn record(
        &self,
        route: Option<&Arc<str>>,
        consumer: Option<&str>,
        status: u16,
        took: Duration,
    ) {
        self.record_at(this_minute_ms(), route, consumer, status, took);
    }

    /// This worker thread's shard.
    fn shard(&self) -> Option<&Mutex<Vec<Minute>>> {
        let index = SHARD.with(|s| {
            s.get().unwrap_or_else(|| {
                let i = self.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
                s.set(Some(i));
                i
            })
        });
        self.shards.get(index)
    }

    fn record_at(
        &self,
        minute_ms: i64,
        route: Option<&Arc<str>>,
        consumer: Option<&str>,
        status: u16,
        took: Duration,
    ) {
        let consumer = consumer.unwrap_or(ANONYMOUS);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let Some(shard) = self.shard() else { return };
        let mut minutes = lock(shard);
        if !minutes.iter().any(|m| m.minute_ms == minute_ms) {
            minutes.push(Minute {
                minute_ms,
                ..Minute::default()
            });
        }
        let Some(minute) = minutes.iter_mut().rev().find(|m| m.minute_ms == minute_ms) else {
            return;
        };
        let route_name = route.map_or(UNMATCHED, |r| &**r);
        if !minute.routes.contains_key(route_name) {
            let key: Arc<str> = route.cloned().unwrap_or_else(|| UNMATCHED.into());
            minute.routes.insert(key, HashMap::new());
        }
        let cap = MAX_KEYS_PER_MINUTE / SHARDS;
        let Some(consumers) = minute.routes.get_mut(route_name) else {
            return;
        };
        let counts = if let Some(c) = consumers.get_mut(consumer) {
            c
        } else {
            let name = if minute.keys >= cap { OTHER } else { consumer };
            if !consumers.contains_key(name) {
                minute.keys += 1;
            }
            consumers.entry(name.to_owned()).or_default()
        };
        counts.requests += 1;
        match status {
            500.. => counts.errors += 1,
            400..=499 => counts.client_errors += 1,
            _ => {}
        }
        if let Some(slot) = counts.latency.get_mut(latency::bucket(micros)) {
            *slot += 1;
        }
    }

    /// Everything counted since the last call, as rows; the tally starts again from zero.
    pub fn take(&self) -> Vec<Row> {
        let mut rows: HashMap<(i64, Arc<str>, String), Counts> = HashMap::new();
        for shard in &self.shards {
            let minutes = std::mem::take(&mut *lock(shard));
            for minute in minutes {
                for (route, consumers) in minute.routes {
                    for (consumer, counts) in consumers {
                        let slot = rows
                            .entry((minute.minute_ms, route.clone(), consumer))
                            .or_default();
                        add(slot, &counts);
                    }
                }
            }
        }
        rows.into_iter()
            .map(|((minute_ms, route, consumer), counts)| Row {
                minute_ms,
                route,
                consumer,
                counts,
            })
            .collect()
    }
}

/// Add `more` into `into`.
pub fn add(into: &mut Counts, more: &Counts) {
    into.requests += more.requests;
    into.errors += more.errors;
    into.client_errors += more.client_errors;
    for (a, b) in into.latency.iter_mut().zip(more.latency.iter()) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_minute_route_and_consumer_then_starts_again() {
        let tally = Tally::default();
        let route: Arc<str> = "orders".into();
        let ms = Duration::from_millis(2);
        tally.record_at(60_000, Some(&route), Some("alice"), 200, ms);
        tally.record_at(60_000, Some(&route), Some("alice"), 502, ms);
        tally.record_at(60_000, Some(&route), None, 404, ms);
        tally.record_at(120_000, None, Some("bob"), 200, ms);
        let mut rows = tally.take();
        rows.sort_by(|a, b| (a.minute_ms, &a.consumer).cmp(&(b.minute_ms, &b.consumer)));
        let seen: Vec<_> = rows
            .iter()
            .map(|r| {
                let c = &r.counts;
                (
                    r.minute_ms,
                    &*r.route,
                    r.consumer.as_str(),
                    c.requests,
                    c.errors,
                    c.client_errors,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (60_000, "orders", ANONYMOUS, 1, 0, 1),
                (60_000, "orders", "alice", 2, 1, 0),
                (120_000, UNMATCHED, "bob", 1, 0, 0),
            ]
        );
        assert_eq!(rows[1].counts.latency.iter().sum::<u64>(), 2);
        assert!(tally.take().is_empty());
    }

    #[test]
    fn consumers_past_the_cap_are_counted_as_other() {
        let tally = Tally::default();
        let route: Arc<str> = "r".into();
        let over = MAX_KEYS_PER_MINUTE / SHARDS + 5;
        for i in 0..over {
            let name = format!("c{i}");
            tally.record_at(0, Some(&route), Some(&name), 200, Duration::ZERO);
        }
        let rows = tally.take();
        assert_eq!(rows.len(), MAX_KEYS_PER_MINUTE / SHARDS + 1);
        let other = rows.iter().find(|r| r.consumer == OTHER);
        assert_eq!(other.map(|r| r.counts.requests), Some(5));
    }
}
