//! Shared plugin state: counters, a key-value store with expiry and token buckets, behind an
//! object-safe trait so the Redis backend (one Redis or a Redis Cluster) can replace the
//! in-process one. Keys arrive already namespaced (`<plugin>:<key>`) by the host imports.

mod gcra;
mod memory;
mod redis;
mod write_behind;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use self::redis::{RedisClusterOptions, RedisOptions, RedisState};
pub use gcra::{TakeOutcome, TokenBucket};
pub use memory::MemoryState;
pub use write_behind::WriteBehind;

/// A state backend failure, shown to the plugin as the `state` import's error string.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    /// The key holds a value of another kind (counter, string or token bucket).
    #[error("key `{key}` does not hold a {expected}")]
    WrongKind {
        /// The full key.
        key: String,
        /// What the operation expected (`counter`, `token bucket`).
        expected: &'static str,
    },
    /// The arguments make no sense (for example a bucket with no capacity).
    #[error("{0}")]
    Invalid(String),
    /// The backend is unreachable or failed.
    #[error("state backend: {0}")]
    Backend(String),
}

impl StateError {
    /// True for failures of the backend itself (unreachable, timed out), as opposed to a
    /// mistake in the call: these are what a plugin's `on_state_error` policy is about.
    pub fn is_backend(&self) -> bool {
        matches!(self, Self::Backend(_))
    }
}

/// A boxed future returned by [`StateBackend`] methods (keeps the trait object-safe).
pub type StateFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// Where counters and values live. Shared (`Arc`) by every plugin and across hot swaps.
pub trait StateBackend: Send + Sync + 'static {
    /// Add `delta` to a counter (created at 0 when absent, with `ttl` as its expiry when given)
    /// and return the new value.
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> StateFuture<'a, i64>;
    /// Several [`incr`](Self::incr)s, `(key, delta, ttl)` each, applied in order (a key listed
    /// twice is added to twice); the new values in the same order.
    ///
    /// Backends override this to make the batch one round trip and atomic as a whole: every key
    /// is checked before any is changed, so a key of another kind fails the batch with no
    /// effect. This default awaits one `incr` after another and stops at the first failure,
    /// leaving the earlier elements applied. On a Redis Cluster the keys are checked first too,
    /// but a batch spanning several hash slots is atomic per slot, not as a whole (the Redis
    /// backend's module docs say what that means).
    fn incr_many<'a>(
        &'a self,
        ops: &'a [(&'a str, i64, Option<Duration>)],
    ) -> StateFuture<'a, Vec<i64>> {
        Box::pin(async move {
            let mut values = Vec::with_capacity(ops.len());
            for &(key, delta, ttl) in ops {
                values.push(self.incr(key, delta, ttl).await?);
            }
            Ok(values)
        })
    }
    /// [`incr_many`](Self::incr_many) without the new values, for callers that only count.
    /// A backend may return before the updates are applied ([`WriteBehind`] sums them and sends
    /// them later); this default applies them before it returns.
    fn add_many<'a>(&'a self, ops: &'a [(&'a str, i64, Option<Duration>)]) -> StateFuture<'a, ()> {
        Box::pin(async move { self.incr_many(ops).await.map(drop) })
    }
    /// Send whatever [`add_many`](Self::add_many) left pending (at shutdown). Nothing to do for
    /// a backend that applies updates at once.
    fn flush(&self) -> StateFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
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
    /// Atomically take `cost` tokens from the token bucket `key` (created full), reserving them
    /// when they would be there within `max_wait` (see [`TokenBucket::take`]). The key expires
    /// once the bucket is full again.
    fn take<'a>(
        &'a self,
        key: &'a str,
        bucket: TokenBucket,
        cost: u32,
        max_wait: Duration,
    ) -> StateFuture<'a, TakeOutcome>;
    /// The value under `key` as bytes (a counter reads as its decimal text), if present and not
    /// expired.
    fn get_bytes<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>>;
    /// Store a binary value, replacing whatever was there; `ttl` `None` means no expiry.
    fn set_bytes<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()>;
    /// Store `value` only when `key` is absent or expired; true when this call stored it.
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool>;
    /// Replace the value with `value` (or delete the key when `None`) only when the current
    /// value equals `expected` (a counter as its decimal text); true when it did. An absent key
    /// never matches.
    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool>;
    /// Give a live key a new expiry (`None` removes it); true when the key was there.
    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> StateFuture<'a, bool>;
    /// Every live counter whose full key (plugin namespace included) starts with `prefix`, in
    /// no particular order. For the admin API: it walks the whole key space of the backend.
    fn scan_counters<'a>(&'a self, prefix: &'a str) -> StateFuture<'a, Vec<(String, i64)>>;
}
