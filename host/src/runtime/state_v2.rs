//! The 0.2.0 `state` import: the 0.1.0 counters and token buckets unchanged, values as bytes,
//! and the operations that build locks and caches (set-if-absent, compare-and-set, expire).
//! Keys and values are bounded by the same `[limits]` as 0.1.0 (`plugin_state_key_bytes`,
//! `plugin_state_value_bytes`); past a bound the plugin gets an error, which is its mistake, not a
//! backend failure (`on_state_error` is not involved), and the limit's counter moves.
//!
//! `incr-many` batches counters into one backend call (one Redis round trip); `add-many` takes the
//! same batch without waiting for the values (written behind with Redis, see
//! `state::WriteBehind`). A batch is bounded like `fetch`'s requests per call: at most
//! [`MAX_INCR_MANY`] elements, each key within the key cap; a batch past either is refused whole,
//! before the backend is asked.

use std::time::{Duration, Instant};

use super::bindings::v01::tollgate::plugin::state as v1;
use super::bindings::v02::tollgate::plugin::state;
use super::host_state::HostState;
use super::limits::{Limit, exceeded};

/// Most counters one `incr-many` call may update.
pub(crate) const MAX_INCR_MANY: usize = 64;

fn ttl(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

impl HostState {
    fn check_value(&self, value: &[u8]) -> Result<(), String> {
        if value.len() > self.limits.max_state_value_bytes {
            exceeded(&self.plugin, Limit::StateValue);
            return Err(format!(
                "state value too large: at most {} bytes",
                self.limits.max_state_value_bytes
            ));
        }
        Ok(())
    }

    /// The namespaced keys of an `incr-many` or `add-many` batch, or why it is refused whole:
    /// more than [`MAX_INCR_MANY`] elements, or a key past the key cap.
    fn counter_keys(&self, call: &str, ops: &[state::CounterAdd]) -> Result<Vec<String>, String> {
        if ops.len() > MAX_INCR_MANY {
            return Err(format!(
                "{call}: at most {MAX_INCR_MANY} counters per call ({} given)",
                ops.len()
            ));
        }
        ops.iter()
            .enumerate()
            .map(|(i, op)| {
                self.state_key(&op.key)
                    .map_err(|e| format!("{call}[{i}]: {e}"))
            })
            .collect()
    }
}

/// A batch as the backend takes it: `(key, delta, ttl)` per element.
fn counter_batch<'a>(
    keys: &'a [String],
    ops: &[state::CounterAdd],
) -> Vec<(&'a str, i64, Option<Duration>)> {
    keys.iter()
        .zip(ops)
        .map(|(key, op)| (key.as_str(), op.delta, ttl(op.ttl_ms)))
        .collect()
}

impl state::Host for HostState {
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        v1::Host::incr(self, key, delta, ttl_ms).await
    }

    async fn incr_many(&mut self, ops: Vec<state::CounterAdd>) -> Result<Vec<i64>, String> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.counter_keys("incr-many", &ops)?;
        let batch = counter_batch(&keys, &ops);
        let started = Instant::now();
        let result = self.state.incr_many(&batch).await;
        self.state_done(started, result)
    }

    async fn add_many(&mut self, ops: Vec<state::CounterAdd>) -> Result<(), String> {
        if ops.is_empty() {
            return Ok(());
        }
        let keys = self.counter_keys("add-many", &ops)?;
        let batch = counter_batch(&keys, &ops);
        let started = Instant::now();
        let result = self.state.add_many(&batch).await;
        self.state_done(started, result)
    }

    async fn get_counter(&mut self, key: String) -> Result<i64, String> {
        v1::Host::get_counter(self, key).await
    }

    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        let key = self.state_key(&key)?;
        let started = Instant::now();
        let result = self.state.get_bytes(&key).await;
        self.state_done(started, result)
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) -> Result<(), String> {
        let key = self.state_key(&key)?;
        self.check_value(&value)?;
        let started = Instant::now();
        let result = self.state.set_bytes(&key, &value, ttl(ttl_ms)).await;
        self.state_done(started, result)
    }

    async fn set_if_absent(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<bool, String> {
        let key = self.state_key(&key)?;
        self.check_value(&value)?;
        let started = Instant::now();
        let result = self.state.set_if_absent(&key, &value, ttl(ttl_ms)).await;
        self.state_done(started, result)
    }

    async fn compare_and_set(
        &mut self,
        key: String,
        expected: Vec<u8>,
        value: Option<Vec<u8>>,
        ttl_ms: u64,
    ) -> Result<bool, String> {
        let key = self.state_key(&key)?;
        self.check_value(&expected)?;
        if let Some(value) = &value {
            self.check_value(value)?;
        }
        let started = Instant::now();
        let result = self
            .state
            .compare_and_set(&key, &expected, value.as_deref(), ttl(ttl_ms))
            .await;
        self.state_done(started, result)
    }

    async fn expire(&mut self, key: String, ttl_ms: u64) -> Result<bool, String> {
        let key = self.state_key(&key)?;
        let started = Instant::now();
        let result = self.state.expire(&key, ttl(ttl_ms)).await;
        self.state_done(started, result)
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        v1::Host::delete(self, key).await
    }

    async fn take(
        &mut self,
        key: String,
        capacity: u32,
        refill_per_second: f64,
        cost: u32,
        max_wait_ms: u64,
    ) -> Result<state::TakeResult, String> {
        let t = v1::Host::take(self, key, capacity, refill_per_second, cost, max_wait_ms).await?;
        Ok(state::TakeResult {
            granted: t.granted,
            wait_ms: t.wait_ms,
            remaining: t.remaining,
            reset_ms: t.reset_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::runtime::limits::PluginLimits;
    use crate::runtime::state::{MemoryState, StateBackend};

    fn host(state: Arc<MemoryState>) -> HostState {
        HostState::for_tests("meter", state)
    }

    fn adds(n: usize) -> Vec<state::CounterAdd> {
        (0..n)
            .map(|i| state::CounterAdd {
                key: format!("k{i}"),
                delta: 1,
                ttl_ms: 0,
            })
            .collect()
    }

    #[tokio::test]
    async fn incr_many_is_namespaced_and_bounded() {
        let store = Arc::new(MemoryState::new());
        let mut h = host(Arc::clone(&store));
        let full = state::Host::incr_many(&mut h, adds(MAX_INCR_MANY)).await;
        assert_eq!(full.map(|v| v.len()), Ok(MAX_INCR_MANY));
        assert_eq!(store.get_counter("meter:k0").await.ok(), Some(1));
        assert_eq!(state::Host::incr_many(&mut h, Vec::new()).await, Ok(vec![]));

        // Too many: refused whole, nothing changes.
        let over = state::Host::incr_many(&mut h, adds(MAX_INCR_MANY + 1)).await;
        assert_eq!(
            over,
            Err(format!(
                "incr-many: at most {MAX_INCR_MANY} counters per call ({} given)",
                MAX_INCR_MANY + 1
            ))
        );
        // A key past the cap, named by its position: nothing changes either.
        let mut long = adds(3);
        long[2].key = "x".repeat(PluginLimits::default().max_state_key_bytes + 1);
        let refused = state::Host::incr_many(&mut h, long).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.starts_with("incr-many[2]: state key too long")),
            "{refused:?}"
        );
        assert_eq!(store.get_counter("meter:k0").await.ok(), Some(1));
        // A key of another kind: the backend's error, not a backend failure.
        assert!(store.set("meter:k1", "text", None).await.is_ok());
        let kind = state::Host::incr_many(&mut h, adds(2)).await;
        assert!(kind.is_err_and(|e| e.contains("meter:k1")));
        assert_eq!(store.get_counter("meter:k0").await.ok(), Some(1));
        assert!(h.state_error.is_none());
    }

    #[tokio::test]
    async fn add_many_is_namespaced_and_bounded_like_incr_many() {
        let store = Arc::new(MemoryState::new());
        let mut h = host(Arc::clone(&store));
        assert_eq!(state::Host::add_many(&mut h, adds(2)).await, Ok(()));
        // The in-process backend applies the updates before the call returns.
        assert_eq!(store.get_counter("meter:k1").await.ok(), Some(1));
        assert_eq!(state::Host::add_many(&mut h, Vec::new()).await, Ok(()));
        let over = state::Host::add_many(&mut h, adds(MAX_INCR_MANY + 1)).await;
        assert!(over.is_err_and(|e| e.starts_with("add-many: at most 64 counters")));
        let mut long = adds(2);
        long[1].key = "x".repeat(PluginLimits::default().max_state_key_bytes + 1);
        let refused = state::Host::add_many(&mut h, long).await;
        assert!(refused.is_err_and(|e| e.starts_with("add-many[1]: state key too long")));
        assert_eq!(
            store.get_counter("meter:k0").await.ok(),
            Some(1),
            "nothing applied"
        );
    }
}
