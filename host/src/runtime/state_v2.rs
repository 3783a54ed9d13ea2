//! The 0.2.0 `state` import: the 0.1.0 counters and token buckets unchanged, values as bytes,
//! and the operations that build locks and caches (set-if-absent, compare-and-set, expire).
//! Keys and values are bounded ([`MAX_KEY_BYTES`], [`MAX_VALUE_BYTES`]); past a bound the plugin
//! gets an error, which is its mistake, not a backend failure (`on_state_error` is not involved).

use std::time::{Duration, Instant};

use super::bindings::v01::tollgate::plugin::state as v1;
use super::bindings::v02::tollgate::plugin::state;
use super::host_state::HostState;
use super::state::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

fn ttl(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

fn check_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "state key of {} bytes is longer than the limit of {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "state value of {} bytes is larger than the limit of {MAX_VALUE_BYTES}",
            value.len()
        ));
    }
    Ok(())
}

impl state::Host for HostState {
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        check_key(&key)?;
        v1::Host::incr(self, key, delta, ttl_ms).await
    }

    async fn get_counter(&mut self, key: String) -> Result<i64, String> {
        check_key(&key)?;
        v1::Host::get_counter(self, key).await
    }

    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        check_key(&key)?;
        let started = Instant::now();
        let result = self.state.get_bytes(&self.state_key(&key)).await;
        self.state_done(started, result)
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) -> Result<(), String> {
        check_key(&key)?;
        check_value(&value)?;
        let started = Instant::now();
        let result = self
            .state
            .set_bytes(&self.state_key(&key), &value, ttl(ttl_ms))
            .await;
        self.state_done(started, result)
    }

    async fn set_if_absent(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<bool, String> {
        check_key(&key)?;
        check_value(&value)?;
        let started = Instant::now();
        let result = self
            .state
            .set_if_absent(&self.state_key(&key), &value, ttl(ttl_ms))
            .await;
        self.state_done(started, result)
    }

    async fn compare_and_set(
        &mut self,
        key: String,
        expected: Vec<u8>,
        value: Option<Vec<u8>>,
        ttl_ms: u64,
    ) -> Result<bool, String> {
        check_key(&key)?;
        check_value(&expected)?;
        if let Some(value) = &value {
            check_value(value)?;
        }
        let started = Instant::now();
        let result = self
            .state
            .compare_and_set(
                &self.state_key(&key),
                &expected,
                value.as_deref(),
                ttl(ttl_ms),
            )
            .await;
        self.state_done(started, result)
    }

    async fn expire(&mut self, key: String, ttl_ms: u64) -> Result<bool, String> {
        check_key(&key)?;
        let started = Instant::now();
        let result = self.state.expire(&self.state_key(&key), ttl(ttl_ms)).await;
        self.state_done(started, result)
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        check_key(&key)?;
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
        check_key(&key)?;
        let t = v1::Host::take(self, key, capacity, refill_per_second, cost, max_wait_ms).await?;
        Ok(state::TakeResult {
            granted: t.granted,
            wait_ms: t.wait_ms,
            remaining: t.remaining,
            reset_ms: t.reset_ms,
        })
    }
}
