//! The 0.2.0 `state` import: the 0.1.0 counters and token buckets unchanged, values as bytes,
//! and the operations that build locks and caches (set-if-absent, compare-and-set, expire).
//! Keys and values are bounded by the same `[limits]` as 0.1.0 (`plugin_state_key_bytes`,
//! `plugin_state_value_bytes`); past a bound the plugin gets an error, which is its mistake, not a
//! backend failure (`on_state_error` is not involved), and the limit's counter moves.

use std::time::{Duration, Instant};

use super::bindings::v01::tollgate::plugin::state as v1;
use super::bindings::v02::tollgate::plugin::state;
use super::host_state::HostState;
use super::limits::{Limit, exceeded};

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
}

impl state::Host for HostState {
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        v1::Host::incr(self, key, delta, ttl_ms).await
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
