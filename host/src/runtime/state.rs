//! Shared plugin state: counters and a key-value store with expiry, behind an object-safe trait
//! so a Redis backend can replace the in-process one. Keys arrive already namespaced
//! (`<plugin>:<key>`) by the host imports.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A state backend failure, shown to the plugin as the `state` import's error string.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    /// The key holds a value of the other kind (counter vs string).
    #[error("key `{0}` holds a string value, not a counter")]
    NotACounter(String),
    /// The backend is unreachable or failed.
    #[error("state backend: {0}")]
    Backend(String),
}

/// A boxed future returned by [`StateBackend`] methods (keeps the trait object-safe).
pub type StateFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// Where counters and values live. Shared (`Arc`) by every plugin and across hot swaps.
pub trait StateBackend: Send + Sync + 'static {
    /// Add `delta` to a counter (created at 0 when absent, with `ttl` as its expiry when given)
    /// and return the new value.
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> StateFuture<'a, i64>;
    /// The counter's value, 0 when absent.
    fn get_counter<'a>(&'a self, key: &'a str) -> StateFuture<'a, i64>;
    /// The value under `key` (a counter reads as its decimal text), if present and not expired.
    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<String>>;
    /// Store a value, replacing whatever was there; `ttl` `None` means no expiry.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()>;
    /// Remove a key of either kind.
    fn delete<'a>(&'a self, key: &'a str) -> StateFuture<'a, ()>;
}

#[derive(Debug)]
enum Value {
    Counter(i64),
    Text(String),
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
#[derive(Debug, Default)]
pub struct MemoryState {
    map: Mutex<Map>,
}

impl MemoryState {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
                    Value::Text(_) => Err(StateError::NotACounter(key.to_owned())),
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
            Some(Value::Text(_)) => Err(StateError::NotACounter(key.to_owned())),
        });
        Box::pin(std::future::ready(result))
    }

    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<String>> {
        let result = self.with(|map, now| {
            Ok(map.live(key, now).map(|e| match &e.value {
                Value::Counter(n) => n.to_string(),
                Value::Text(s) => s.clone(),
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
            Err(StateError::NotACounter(_))
        ));
        assert!(state.delete("v").await.is_ok());
        assert_eq!(state.get("v").await.ok(), Some(None));
    }
}
