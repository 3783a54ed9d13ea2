//! The in-process backend: one map under a mutex.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{StateBackend, StateError, StateFuture, TakeOutcome, TokenBucket};

#[derive(Debug)]
enum Value {
    Counter(i64),
    Text(String),
    /// A value stored by the 0.2.0 operations (any bytes).
    Binary(Vec<u8>),
    /// A token bucket's theoretical arrival time, in milliseconds since the store's `epoch`.
    Bucket(f64),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// Entries, plus when expired ones were last swept.
#[derive(Debug, Default)]
struct Map {
    entries: HashMap<String, Entry>,
    sweep_at_len: usize,
}

impl Map {
    /// The live entry under `key`, removing it first when expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| !e.live(now)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    /// Store a binary value (the 0.2.0 operations).
    fn put_binary(&mut self, key: &str, value: &[u8], ttl: Option<Duration>, now: Instant) {
        self.maybe_sweep(now);
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: Value::Binary(value.to_vec()),
                expires: ttl.and_then(|t| now.checked_add(t)),
            },
        );
    }

    /// Drop expired entries once the map has doubled since the last sweep, so keys that are
    /// never read again do not accumulate (amortised O(1) per insert).
    fn maybe_sweep(&mut self, now: Instant) {
        if self.entries.len() >= self.sweep_at_len.max(1024) {
            self.entries.retain(|_, e| e.live(now));
            self.sweep_at_len = self.entries.len().saturating_mul(2);
        }
    }
}

/// The in-process backend: exact under concurrency (each operation holds one lock briefly),
/// expiry checked on access and swept as the map grows. Lost on restart.
#[derive(Debug)]
pub struct MemoryState {
    map: Mutex<Map>,
    /// Zero of the token buckets' clock.
    epoch: Instant,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self::new()
    }
}

fn not_a(key: &str, expected: &'static str) -> StateError {
    StateError::WrongKind {
        key: key.to_owned(),
        expected,
    }
}

impl MemoryState {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            map: Mutex::default(),
            epoch: Instant::now(),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Map, Instant) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| StateError::Backend("memory state lock poisoned".into()))?;
        f(&mut map, Instant::now())
    }
}

impl StateBackend for MemoryState {
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> StateFuture<'a, i64> {
        let result = self.with(|map, now| {
            if let Some(entry) = map.live(key, now) {
                return match &mut entry.value {
                    Value::Counter(n) => {
                        *n = n.saturating_add(delta);
                        Ok(*n)
                    }
                    Value::Text(_) | Value::Binary(_) | Value::Bucket(_) => {
                        Err(not_a(key, "counter"))
                    }
                };
            }
            map.maybe_sweep(now);
            let expires = ttl.and_then(|t| now.checked_add(t));
            map.entries.insert(
                key.to_owned(),
                Entry {
                    value: Value::Counter(delta),
                    expires,
                },
            );
            Ok(delta)
        });
        Box::pin(std::future::ready(result))
    }

    fn get_counter<'a>(&'a self, key: &'a str) -> StateFuture<'a, i64> {
        let result = self.with(|map, now| match map.live(key, now).map(|e| &e.value) {
            None => Ok(0),
            Some(Value::Counter(n)) => Ok(*n),
            Some(Value::Text(_) | Value::Binary(_) | Value::Bucket(_)) => {
                Err(not_a(key, "counter"))
            }
        });
        Box::pin(std::future::ready(result))
    }

    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<String>> {
        let result = self.with(|map, now| {
            Ok(map.live(key, now).map(|e| match &e.value {
                Value::Counter(n) => n.to_string(),
                Value::Text(s) => s.clone(),
                Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                Value::Bucket(tat) => format!("{tat:.3}"),
            }))
        });
        Box::pin(std::future::ready(result))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()> {
        let result = self.with(|map, now| {
            map.maybe_sweep(now);
            let expires = ttl.and_then(|t| now.checked_add(t));
            map.entries.insert(
                key.to_owned(),
                Entry {
                    value: Value::Text(value.to_owned()),
                    expires,
                },
            );
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StateFuture<'a, ()> {
        let result = self.with(|map, _| {
            map.entries.remove(key);
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }

    fn take<'a>(
        &'a self,
        key: &'a str,
        bucket: TokenBucket,
        cost: u32,
        max_wait: Duration,
    ) -> StateFuture<'a, TakeOutcome> {
        let max_wait_ms = u64::try_from(max_wait.as_millis()).unwrap_or(u64::MAX);
        let result = self.with(|map, now| {
            let now_ms = now.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0;
            let tat = match map.live(key, now).map(|e| &e.value) {
                None => None,
                Some(Value::Bucket(tat)) => Some(*tat),
                Some(Value::Counter(_) | Value::Text(_) | Value::Binary(_)) => {
                    return Err(not_a(key, "token bucket"));
                }
            };
            let (outcome, store) = bucket.take(tat, now_ms, cost, max_wait_ms);
            if let Some(tat) = store {
                // Expires when full again: an absent key is a full bucket.
                let full_in = Duration::from_secs_f64(((tat - now_ms) / 1000.0).max(0.0));
                if full_in.is_zero() {
                    map.entries.remove(key);
                } else {
                    map.maybe_sweep(now);
                    map.entries.insert(
                        key.to_owned(),
                        Entry {
                            value: Value::Bucket(tat),
                            expires: now.checked_add(full_in),
                        },
                    );
                }
            }
            Ok(outcome)
        });
        Box::pin(std::future::ready(result))
    }

    fn get_bytes<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        let result = self.with(|map, now| {
            Ok(map.live(key, now).and_then(|e| match &e.value {
                Value::Counter(n) => Some(n.to_string().into_bytes()),
                Value::Text(s) => Some(s.as_bytes().to_vec()),
                Value::Binary(b) => Some(b.clone()),
                Value::Bucket(tat) => Some(format!("{tat:.3}").into_bytes()),
            }))
        });
        Box::pin(std::future::ready(result))
    }

    fn set_bytes<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()> {
        let result = self.with(|map, now| {
            map.put_binary(key, value, ttl, now);
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool> {
        let result = self.with(|map, now| {
            if map.live(key, now).is_some() {
                return Ok(false);
            }
            map.put_binary(key, value, ttl, now);
            Ok(true)
        });
        Box::pin(std::future::ready(result))
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool> {
        let result = self.with(|map, now| {
            let matches = map.live(key, now).is_some_and(|e| match &e.value {
                Value::Text(s) => s.as_bytes() == expected,
                Value::Binary(b) => b.as_slice() == expected,
                // As in Redis, where a counter is its decimal text.
                Value::Counter(n) => n.to_string().as_bytes() == expected,
                Value::Bucket(_) => false,
            });
            if matches {
                match value {
                    Some(value) => map.put_binary(key, value, ttl, now),
                    None => {
                        map.entries.remove(key);
                    }
                }
            }
            Ok(matches)
        });
        Box::pin(std::future::ready(result))
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> StateFuture<'a, bool> {
        let result = self.with(|map, now| {
            Ok(match map.live(key, now) {
                Some(entry) => {
                    entry.expires = ttl.and_then(|t| now.checked_add(t));
                    true
                }
                None => false,
            })
        });
        Box::pin(std::future::ready(result))
    }

    fn scan_counters<'a>(&'a self, prefix: &'a str) -> StateFuture<'a, Vec<(String, i64)>> {
        let result = self.with(|map, now| {
            Ok(map
                .entries
                .iter()
                .filter(|(k, e)| k.starts_with(prefix) && e.live(now))
                .filter_map(|(k, e)| match e.value {
                    Value::Counter(n) => Some((k.clone(), n)),
                    Value::Text(_) | Value::Binary(_) | Value::Bucket(_) => None,
                })
                .collect())
        });
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counters_are_exact_under_concurrency() {
        let state = std::sync::Arc::new(MemoryState::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let state = std::sync::Arc::clone(&state);
            tasks.push(tokio::spawn(async move {
                for _ in 0..1000 {
                    let _ = state.incr("p:k", 1, None).await;
                }
            }));
        }
        for t in tasks {
            assert!(t.await.is_ok());
        }
        assert_eq!(state.get_counter("p:k").await.ok(), Some(8000));
    }

    #[tokio::test]
    async fn ttl_expires_and_kinds_are_checked() {
        let state = MemoryState::new();
        assert_eq!(
            state
                .incr("c", 2, Some(Duration::from_millis(20)))
                .await
                .ok(),
            Some(2)
        );
        assert_eq!(state.get("c").await.ok(), Some(Some("2".to_owned())));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(state.get_counter("c").await.ok(), Some(0));
        assert!(state.set("v", "x", None).await.is_ok());
        assert!(matches!(
            state.incr("v", 1, None).await,
            Err(StateError::WrongKind { .. })
        ));
        assert!(state.delete("v").await.is_ok());
        assert_eq!(state.get("v").await.ok(), Some(None));
    }

    fn bucket(capacity: u32, rate: f64) -> TokenBucket {
        match TokenBucket::new(capacity, rate) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn take_is_exact_under_concurrency() {
        // 100 tokens refilling at one per 1000 s: 800 concurrent takes, exactly 100 granted.
        let state = std::sync::Arc::new(MemoryState::new());
        let b = bucket(100, 0.001);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let state = std::sync::Arc::clone(&state);
            tasks.push(tokio::spawn(async move {
                let mut granted = 0;
                for _ in 0..100 {
                    if let Ok(o) = state.take("p:b", b, 1, Duration::ZERO).await {
                        granted += u32::from(o.granted);
                    }
                }
                granted
            }));
        }
        let mut granted = 0;
        for t in tasks {
            granted += t.await.unwrap_or(0);
        }
        assert_eq!(granted, 100);
    }

    #[tokio::test]
    async fn take_refills_and_the_key_expires_when_full() {
        let state = MemoryState::new();
        let b = bucket(2, 50.0); // one token every 20 ms
        let first = state.take("b", b, 2, Duration::ZERO).await.ok();
        assert_eq!(first.map(|o| (o.granted, o.remaining)), Some((true, 0)));
        let refused = state.take("b", b, 1, Duration::ZERO).await.ok();
        assert_eq!(refused.map(|o| o.granted), Some(false));
        assert!(refused.is_some_and(|o| (1..=20).contains(&o.wait_ms)));
        // Reserved with a wait, then full again after ~60 ms and the key is gone.
        let waited = state.take("b", b, 1, Duration::from_millis(100)).await.ok();
        assert!(waited.is_some_and(|o| o.granted && o.wait_ms > 0));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(state.get("b").await.ok(), Some(None));
        let again = state.take("b", b, 1, Duration::ZERO).await.ok();
        assert_eq!(again.map(|o| (o.granted, o.remaining)), Some((true, 1)));
        assert!(state.incr("b", 1, None).await.is_err());
        assert!(state.set("c", "x", None).await.is_ok());
        assert!(state.take("c", b, 1, Duration::ZERO).await.is_err());
        assert!(matches!(
            TokenBucket::new(0, 1.0),
            Err(StateError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn scan_counters_lists_live_counters_under_a_prefix() {
        let state = MemoryState::new();
        for (k, n) in [("quota:alice", 3), ("quota:bob", 5), ("other:alice", 7)] {
            assert!(state.incr(k, n, None).await.is_ok());
        }
        assert!(
            state
                .incr("quota:gone", 1, Some(Duration::from_millis(1)))
                .await
                .is_ok()
        );
        assert!(state.set("quota:text", "x", None).await.is_ok());
        assert!(
            state
                .take("quota:bucket", bucket(5, 1.0), 1, Duration::ZERO)
                .await
                .is_ok()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut found = state.scan_counters("quota:").await.unwrap_or_default();
        found.sort();
        assert_eq!(
            found,
            vec![("quota:alice".to_owned(), 3), ("quota:bob".to_owned(), 5)]
        );
    }
}
