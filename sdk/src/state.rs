//! Shared state: counters, a key-value store with expiry and token buckets, shared by every instance of the
//! plugin and, with the Redis backend, by every gateway. Keys are namespaced by the plugin's name
//! in the gateway config. Errors are backend failures (for example Redis unreachable).
//!
//! Use this, not the plugin's own memory, for anything that must hold across requests: each
//! instance has its own memory and instances come and go.
//!
//! Limits: keys at most 1024 bytes, values at most 1 MiB (past them the call fails with a
//! message). TTLs are in milliseconds; 0 means no expiry. The same semantics hold for the
//! in-process (`memory`) and the Redis backend.
//!
//! A lock, as the idempotency plugin takes one:
//!
//! ```no_run
//! use tollgate_sdk::state;
//!
//! let token = b"request-7f3a"; // unique per holder
//! if state::set_if_absent("lock:order-42", token, 30_000)? {
//!     // ... work ...
//!     state::compare_and_set("lock:order-42", token, None, 0)?; // release only if still ours
//! }
//! # Ok::<(), String>(())
//! ```

use crate::__private::tollgate::plugin::state as raw;

/// Add `delta` to a counter and return the new value. An absent counter starts at 0; `ttl_ms`,
/// when non-zero, sets its expiry when it is created.
pub fn incr(key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
    raw::incr(key, delta, ttl_ms)
}

/// One counter update of [`incr_many`]: the arguments of one [`incr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterAdd<'a> {
    /// The counter's key.
    pub key: &'a str,
    /// Added to the counter (negative subtracts).
    pub delta: i64,
    /// The counter's expiry when this update creates it; 0 means none.
    pub ttl_ms: u64,
}

/// Most updates one [`incr_many`] or [`add_many`] call may carry; a longer batch is refused whole.
pub const MAX_INCR_MANY: usize = 64;

/// Several [`incr`]s in one call, for a plugin that updates several counters per request: each
/// element does what `incr` with its arguments does, in order (a key listed twice is added to
/// twice), and the new values come back in the same order.
///
/// One round trip to the backend whatever the length, and atomic as a whole (with Redis one
/// script): every key is checked before any counter changes, so a key holding a value or token
/// bucket fails the call with no effect. At most [`MAX_INCR_MANY`] updates, each key within the
/// key limit; past either the call fails with a message and changes nothing. An empty slice
/// returns an empty vector without calling the host.
///
/// ```no_run
/// use tollgate_sdk::state::{self, CounterAdd};
///
/// let ttl_ms = 3_600_000;
/// let values = state::incr_many(&[
///     CounterAdd { key: "usage:alice:requests", delta: 1, ttl_ms },
///     CounterAdd { key: "usage:alice:bytes", delta: 5120, ttl_ms },
/// ])?;
/// if let [requests, bytes] = values[..] {
///     // ... compare with a limit, report them ...
/// #   let _ = (requests, bytes);
/// }
/// # Ok::<(), String>(())
/// ```
pub fn incr_many(ops: &[CounterAdd<'_>]) -> Result<Vec<i64>, String> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    raw::incr_many(&raw_adds(ops))
}

/// [`incr_many`] without the new values, for a plugin that only counts (a meter): same
/// elements, limits and argument checks, and it returns as soon as the gateway accepts the
/// updates.
///
/// With the in-process backend they are applied before it returns. With Redis they are written
/// behind: summed per key in the gateway and sent together every `[state] write_behind_ms`
/// (100 ms by default), so the call does not wait for a round trip. Until then other gateways
/// do not see them; this gateway's own state calls on such a key send its pending delta first.
/// An update to a key holding a value or token bucket is dropped with a warning in the gateway's
/// log when it is sent. An empty slice returns without calling the host.
///
/// ```no_run
/// use tollgate_sdk::state::{self, CounterAdd};
///
/// let ttl_ms = 3_600_000;
/// state::add_many(&[
///     CounterAdd { key: "usage:alice:requests", delta: 1, ttl_ms },
///     CounterAdd { key: "usage:alice:bytes", delta: 5120, ttl_ms },
/// ])?;
/// # Ok::<(), String>(())
/// ```
pub fn add_many(ops: &[CounterAdd<'_>]) -> Result<(), String> {
    if ops.is_empty() {
        return Ok(());
    }
    raw::add_many(&raw_adds(ops))
}

/// The WIT records of a batch.
fn raw_adds<'a>(ops: &[CounterAdd<'a>]) -> Vec<raw::CounterAdd<'a>> {
    ops.iter()
        .map(|op| raw::CounterAdd {
            key: op.key,
            delta: op.delta,
            ttl_ms: op.ttl_ms,
        })
        .collect()
}

/// The current value of a counter (0 when absent).
pub fn get_counter(key: &str) -> Result<i64, String> {
    raw::get_counter(key)
}

/// The value stored under `key` as text, if any and not expired (bytes that are not UTF-8 are
/// replaced by U+FFFD; use [`get_bytes`] for binary values).
pub fn get(key: &str) -> Result<Option<String>, String> {
    raw::get(key).map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Store a text value; `ttl_ms` of 0 means no expiry.
pub fn set(key: &str, value: &str, ttl_ms: u64) -> Result<(), String> {
    raw::set(key, value.as_bytes(), ttl_ms)
}

/// The value stored under `key`, if any and not expired (a counter reads as its decimal text).
pub fn get_bytes(key: &str) -> Result<Option<Vec<u8>>, String> {
    raw::get(key)
}

/// Store a binary value, replacing whatever was there; `ttl_ms` of 0 means no expiry.
pub fn set_bytes(key: &str, value: &[u8], ttl_ms: u64) -> Result<(), String> {
    raw::set(key, value, ttl_ms)
}

/// Store `value` only when `key` is absent or expired: `Ok(true)` when this call stored it.
/// Atomic across instances and (with Redis) gateways, so exactly one concurrent caller wins: a
/// lock held until it is deleted or the TTL runs out.
pub fn set_if_absent(key: &str, value: &[u8], ttl_ms: u64) -> Result<bool, String> {
    raw::set_if_absent(key, value, ttl_ms)
}

/// Atomically replace the value with `value` (or delete the key when `None`) only when the
/// current value equals `expected`: `Ok(true)` when it did. An absent key never matches.
/// `ttl_ms` is the new value's expiry (0 = none).
pub fn compare_and_set(
    key: &str,
    expected: &[u8],
    value: Option<&[u8]>,
    ttl_ms: u64,
) -> Result<bool, String> {
    raw::compare_and_set(key, expected, value, ttl_ms)
}

/// Give a live key a new expiry, `ttl_ms` from now (0 removes the expiry): `Ok(true)` when the
/// key was there. Renews a lock or a cache entry without rewriting it.
pub fn expire(key: &str, ttl_ms: u64) -> Result<bool, String> {
    raw::expire(key, ttl_ms)
}

/// Remove a key (counter or value).
pub fn delete(key: &str) -> Result<(), String> {
    raw::delete(key)
}

/// The outcome of [`take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeResult {
    /// True when the tokens were granted, now or (with `wait_ms` > 0) reserved for later.
    pub granted: bool,
    /// When granted: milliseconds to wait before proceeding (0 = go now; a plugin usually
    /// answers [`crate::Action::Defer`] with it). When refused: milliseconds until `cost` tokens
    /// will be available (a Retry-After hint).
    pub wait_ms: u64,
    /// Whole tokens left in the bucket after this call (0 when it is in debt).
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

/// Atomically take `cost` tokens from the token bucket `key` (created full), which holds at most
/// `capacity` tokens and refills at `refill_per_second`. When fewer than `cost` tokens are there
/// and they would be within `max_wait_ms`, they are reserved (the bucket goes into debt) and the
/// result is granted with that `wait_ms`: callers that wait before proceeding are served in
/// arrival order. Otherwise nothing is taken and the result is not granted.
///
/// Exact under concurrency, across instances and (with Redis) across gateways; the key expires
/// once the bucket is full. Fails when `capacity` is 0, when `refill_per_second` is not between
/// 0.000001 and 1e9, when `key` holds a counter or value, or when the backend fails.
///
/// ```no_run
/// use tollgate_sdk::state;
///
/// // 10 requests per second, bursts of 20, no waiting.
/// match state::take("client:203.0.113.7", 20, 10.0, 1, 0) {
///     Ok(t) if t.granted => { /* proceed */ }
///     Ok(t) => { /* 429, Retry-After: t.wait_ms.div_ceil(1000) */ }
///     Err(e) => { /* backend failure */ }
/// }
/// ```
pub fn take(
    key: &str,
    capacity: u32,
    refill_per_second: f64,
    cost: u32,
    max_wait_ms: u64,
) -> Result<TakeResult, String> {
    raw::take(key, capacity, refill_per_second, cost, max_wait_ms).map(|t| TakeResult {
        granted: t.granted,
        wait_ms: t.wait_ms,
        remaining: t.remaining,
        reset_ms: t.reset_ms,
    })
}

/// Escape a name (a consumer, a route) for use as one segment of a `:`-separated state key:
/// `%`, `:` and control characters become `%XX`, so a consumer called `a:b` cannot write into
/// the keys of consumer `a`. The gateway's usage API reads meter keys with the same rule.
pub fn key_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    push_key_segment(&mut out, name);
    out
}

/// [`key_segment`], appended to `out` (for a plugin that builds a whole key in one buffer).
pub fn push_key_segment(out: &mut String, name: &str) {
    // Printable ASCII other than `%` and `:` stays as it is: most names, copied in one go.
    let plain = |b: u8| (0x20..0x7f).contains(&b) && b != b'%' && b != b':';
    if name.bytes().all(plain) {
        out.push_str(name);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for c in name.chars() {
        if c == '%' || c == ':' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_segments_escape_separators_and_controls_only() {
        assert_eq!(key_segment("alice"), "alice");
        assert_eq!(key_segment(""), "");
        assert_eq!(key_segment("a:b%c"), "a%3Ab%25c");
        assert_eq!(key_segment("x\ny\u{7f}"), "x%0Ay%7F");
        // Non-ASCII text stays; a C1 control is escaped byte by byte.
        assert_eq!(key_segment("café"), "café");
        assert_eq!(key_segment("a\u{85}b"), "a%C2%85b");
        let mut key = String::from("usage:");
        push_key_segment(&mut key, "a:b");
        push_key_segment(&mut key, "c");
        assert_eq!(key, "usage:a%3Abc");
    }
}
