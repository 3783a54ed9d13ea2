//! Shared state: counters and a key-value store with expiry, shared by every instance of the
//! plugin and, with the Redis backend, by every gateway. Keys are namespaced by the plugin's name
//! in the gateway config. Errors are backend failures (for example Redis unreachable).
//!
//! Use this, not the plugin's own memory, for anything that must hold across requests: each
//! instance has its own memory and instances come and go.

use crate::__private::tollgate::plugin::state as raw;

/// Add `delta` to a counter and return the new value. An absent counter starts at 0; `ttl_ms`,
/// when non-zero, sets its expiry when it is created.
pub fn incr(key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
    raw::incr(key, delta, ttl_ms)
}

/// The current value of a counter (0 when absent).
pub fn get_counter(key: &str) -> Result<i64, String> {
    raw::get_counter(key)
}

/// The value stored under `key`, if any and not expired.
pub fn get(key: &str) -> Result<Option<String>, String> {
    raw::get(key)
}

/// Store a value; `ttl_ms` of 0 means no expiry.
pub fn set(key: &str, value: &str, ttl_ms: u64) -> Result<(), String> {
    raw::set(key, value, ttl_ms)
}

/// Remove a key (counter or value).
pub fn delete(key: &str) -> Result<(), String> {
    raw::delete(key)
}
