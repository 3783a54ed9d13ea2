//! Write-behind counters for a remote backend (Redis): the `state.add-many` import's updates are
//! summed per key in the gateway and sent in batches every `[state] write_behind_ms`, so a
//! meter makes one round trip per interval instead of one wait per request.
//!
//! [`WriteBehind`] wraps the backend and is itself a [`StateBackend`]: every other call goes
//! through unchanged, except that a call on a key with a pending delta sends that delta first
//! ([`WriteBehind::settle`]), so this gateway reads its own writes and a `delete` is not undone
//! by a later flush. Reads of many keys (`scan_counters`, the admin API's usage) flush
//! everything first.
//!
//! Bounded: at most [`MAX_PENDING_KEYS`] keys and [`MAX_PENDING_BYTES`] wait. Past that
//! `add_many` waits for the backend like `incr_many` (back-pressure, nothing is lost). A flush
//! that fails on the backend puts its sums back to be sent next time (within the same bound;
//! past it they are dropped and counted in `tollgate_state_write_behind_dropped_total`). A key
//! of the wrong kind (a value or token bucket) loses its update with a warning: the plugin that
//! sent it is long gone.
//!
//! A background task on the runtime that made the wrapper flushes every interval and then sets
//! `tollgate_state_write_behind_pending_keys` to what is still waiting; dropping the
//! wrapper makes it flush once more and stop, and [`StateBackend::flush`] (called at shutdown)
//! sends everything at once.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{StateBackend, StateError, StateFuture, TakeOutcome, TokenBucket};

/// Most keys with a pending delta; past it `add_many` waits for the backend.
pub const MAX_PENDING_KEYS: usize = 50_000;
/// Most bytes the pending keys may take (their text plus [`ENTRY_BYTES`] each): keys may be up to
/// `plugin_state_key_bytes` long, so the key count alone would not bound the memory.
pub const MAX_PENDING_BYTES: usize = 8 << 20;
/// What one pending entry costs beside its key's text (map slot, `String`, `Pending`).
const ENTRY_BYTES: usize = 64;
/// Most updates one flush sends in one backend call (the `incr-many` bound).
const FLUSH_BATCH: usize = 64;
/// Shards of the pending map (by key hash): a key's delta is found with one lock.
const SHARDS: usize = 16;

/// One key's pending update.
#[derive(Debug, Clone, Copy)]
struct Pending {
    delta: i64,
    /// When the counter should expire if this update creates it (the latest asked for).
    expires_at: Option<Instant>,
}

impl Pending {
    fn merge(&mut self, other: Pending) {
        self.delta = self.delta.saturating_add(other.delta);
        self.expires_at = self.expires_at.max(other.expires_at);
    }

    /// The TTL to send now: what is left until `expires_at`, at least 1 ms.
    fn ttl(&self, now: Instant) -> Option<Duration> {
        self.expires_at.map(|at| {
            at.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        })
    }
}

/// The pending deltas, sharded by key.
struct Buffer {
    shards: [Mutex<HashMap<String, Pending>>; SHARDS],
    hasher: RandomState,
    /// Keys pending across all shards.
    keys: AtomicUsize,
    /// Their cost in bytes ([`entry_bytes`]).
    bytes: AtomicUsize,
    /// A flush has drained deltas it has not finished sending.
    in_flight: AtomicBool,
}

impl Buffer {
    fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hasher: RandomState::new(),
            keys: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            in_flight: AtomicBool::new(false),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Pending>> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding a shard cannot leave a map half-updated in a way that matters:
        // its entries are plain sums. Take the lock back rather than poison every later call.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Add `update` to `key`'s pending delta. False when the key is new and the buffer is full
    /// ([`MAX_PENDING_KEYS`] keys or [`MAX_PENDING_BYTES`]).
    fn add(&self, key: &str, update: Pending) -> bool {
        let mut shard = self.shard(key);
        if let Some(pending) = shard.get_mut(key) {
            pending.merge(update);
            return true;
        }
        let cost = entry_bytes(key);
        let keys = self.keys.fetch_add(1, Ordering::Relaxed);
        let bytes = self.bytes.fetch_add(cost, Ordering::Relaxed);
        if keys >= MAX_PENDING_KEYS || bytes + cost > MAX_PENDING_BYTES {
            self.forget(1, cost);
            return false;
        }
        shard.insert(key.to_owned(), update);
        true
    }

    /// Count `keys` entries of `bytes` as gone.
    fn forget(&self, keys: usize, bytes: usize) {
        self.keys.fetch_sub(keys, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Take `key`'s pending delta, if any.
    fn take(&self, key: &str) -> Option<Pending> {
        if self.keys.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let taken = self.shard(key).remove(key);
        if taken.is_some() {
            self.forget(1, entry_bytes(key));
        }
        taken
    }

    /// Take every pending delta.
    fn drain(&self) -> Vec<(String, Pending)> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|p| p.into_inner()));
            self.forget(taken.len(), taken.keys().map(|k| entry_bytes(k)).sum());
            all.extend(taken);
        }
        all
    }

    /// Put back deltas a failed flush could not send; what no longer fits is dropped.
    fn restore(&self, updates: impl IntoIterator<Item = (String, Pending)>) {
        let mut dropped = 0u64;
        for (key, update) in updates {
            if !self.add(&key, update) {
                dropped += 1;
            }
        }
        if dropped > 0 {
            metrics::counter!("tollgate_state_write_behind_dropped_total").increment(dropped);
            tracing::warn!(
                dropped,
                "state write-behind: buffer full while the backend fails; dropped counter updates"
            );
        }
    }
}

/// What a pending entry for `key` counts against [`MAX_PENDING_BYTES`].
fn entry_bytes(key: &str) -> usize {
    key.len() + ENTRY_BYTES
}

/// A backend whose `add_many` is written behind (see the module docs).
pub struct WriteBehind {
    inner: Arc<dyn StateBackend>,
    buffer: Arc<Buffer>,
    /// One flush at a time, so batches reach the backend in the order they were drained.
    flushing: Arc<tokio::sync::Mutex<()>>,
    /// Dropped with the wrapper: the flusher sends what is left and stops.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind")
            .field("pending_keys", &self.pending_keys())
            .finish_non_exhaustive()
    }
}

impl WriteBehind {
    /// Wrap `inner`, flushing every `interval` from a task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime (like `tokio::spawn`).
    pub fn new(inner: Arc<dyn StateBackend>, interval: Duration) -> Arc<Self> {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let wrapper = Arc::new(Self {
            inner,
            buffer: Arc::new(Buffer::new()),
            flushing: Arc::new(tokio::sync::Mutex::new(())),
            _stop: stop,
        });
        let (inner, buffer, flushing) = (
            Arc::clone(&wrapper.inner),
            Arc::clone(&wrapper.buffer),
            Arc::clone(&wrapper.flushing),
        );
        let pending = metrics::gauge!("tollgate_state_write_behind_pending_keys");
        // Exported from the start (at 0), so `increase()` over it works from the first drop.
        metrics::counter!("tollgate_state_write_behind_dropped_total").increment(0);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = &mut stopped => break,
                }
                if buffer.keys.load(Ordering::Relaxed) > 0 {
                    let _guard = flushing.lock().await;
                    flush(inner.as_ref(), &buffer).await;
                }
                // What is still waiting after the send: 0 while the backend keeps up, growing
                // while it fails.
                pending.set(buffer.keys.load(Ordering::Relaxed) as f64);
            }
            let _guard = flushing.lock().await;
            flush(inner.as_ref(), &buffer).await;
        });
        wrapper
    }

    /// Keys with a pending delta.
    pub fn pending_keys(&self) -> usize {
        self.buffer.keys.load(Ordering::Relaxed)
    }

    /// Nothing pending and nothing being sent: calls go straight to the backend.
    fn idle(&self) -> bool {
        self.buffer.keys.load(Ordering::Acquire) == 0
            && !self.buffer.in_flight.load(Ordering::Acquire)
    }

    /// Send `key`'s pending delta, if any, before a call on that key, after any flush in
    /// flight (which may hold it). A backend failure puts the delta back and is returned (the
    /// call would have failed on it too).
    async fn settle(&self, key: &str) -> Result<(), StateError> {
        if self.buffer.in_flight.load(Ordering::Acquire) {
            drop(self.flushing.lock().await);
        }
        let Some(pending) = self.buffer.take(key) else {
            return Ok(());
        };
        let ttl = pending.ttl(Instant::now());
        match self.inner.incr(key, pending.delta, ttl).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_backend() => {
                self.buffer.restore([(key.to_owned(), pending)]);
                Err(e)
            }
            Err(e) => {
                lost(key, &e);
                Ok(())
            }
        }
    }

    /// `call` on `key`, after its pending delta is sent; without a pending delta `call` is
    /// returned as it is (no extra future).
    fn settled<'a, T: Send + 'a>(
        &'a self,
        key: &'a str,
        call: impl FnOnce() -> StateFuture<'a, T> + Send + 'a,
    ) -> StateFuture<'a, T> {
        if self.idle() {
            return call();
        }
        Box::pin(async move {
            self.settle(key).await?;
            call().await
        })
    }
}

/// Send every pending delta in batches of [`FLUSH_BATCH`]. After a backend failure the rest
/// is put back for the next flush; a batch refused for a key of the wrong kind is sent key by
/// key, so only that key's update is lost.
async fn flush(inner: &dyn StateBackend, buffer: &Buffer) {
    buffer.in_flight.store(true, Ordering::Release);
    send(inner, buffer).await;
    buffer.in_flight.store(false, Ordering::Release);
}

/// [`flush`]'s work, while `in_flight` is set.
async fn send(inner: &dyn StateBackend, buffer: &Buffer) {
    let mut updates = buffer.drain().into_iter();
    loop {
        let batch: Vec<(String, Pending)> = updates.by_ref().take(FLUSH_BATCH).collect();
        if batch.is_empty() {
            return;
        }
        let now = Instant::now();
        let ops: Vec<(&str, i64, Option<Duration>)> = batch
            .iter()
            .map(|(key, p)| (key.as_str(), p.delta, p.ttl(now)))
            .collect();
        match inner.incr_many(&ops).await {
            Ok(_) => {}
            Err(e) if e.is_backend() => {
                tracing::debug!(error = %e, "state write-behind: flush failed; kept for the next one");
                buffer.restore(batch.into_iter().chain(updates));
                return;
            }
            Err(_) => {
                for (key, pending) in &batch {
                    if let Err(e) = inner.incr(key, pending.delta, pending.ttl(now)).await {
                        if e.is_backend() {
                            buffer.restore([(key.clone(), *pending)]);
                        } else {
                            lost(key, &e);
                        }
                    }
                }
            }
        }
    }
}

/// A pending update the backend refused for good (the key holds another kind).
fn lost(key: &str, error: &StateError) {
    metrics::counter!("tollgate_state_write_behind_dropped_total").increment(1);
    tracing::warn!(key, error = %error, "state write-behind: counter update refused; dropped");
}

impl StateBackend for WriteBehind {
    fn add_many<'a>(&'a self, ops: &'a [(&'a str, i64, Option<Duration>)]) -> StateFuture<'a, ()> {
        let now = Instant::now();
        for (i, &(key, delta, ttl)) in ops.iter().enumerate() {
            let update = Pending {
                delta,
                expires_at: ttl.map(|ttl| now + ttl),
            };
            if !self.buffer.add(key, update) {
                // Full: wait for the backend with the rest, as `incr_many` would.
                let rest = &ops[i..];
                return Box::pin(async move { self.inner.incr_many(rest).await.map(drop) });
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn flush(&self) -> StateFuture<'_, ()> {
        Box::pin(async move {
            let _guard = self.flushing.lock().await;
            flush(self.inner.as_ref(), &self.buffer).await;
            Ok(())
        })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> StateFuture<'a, i64> {
        self.settled(key, move || self.inner.incr(key, delta, ttl))
    }

    fn incr_many<'a>(
        &'a self,
        ops: &'a [(&'a str, i64, Option<Duration>)],
    ) -> StateFuture<'a, Vec<i64>> {
        if self.idle() {
            return self.inner.incr_many(ops);
        }
        Box::pin(async move {
            for &(key, _, _) in ops {
                self.settle(key).await?;
            }
            self.inner.incr_many(ops).await
        })
    }

    fn get_counter<'a>(&'a self, key: &'a str) -> StateFuture<'a, i64> {
        self.settled(key, move || self.inner.get_counter(key))
    }

    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<String>> {
        self.settled(key, move || self.inner.get(key))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()> {
        self.settled(key, move || self.inner.set(key, value, ttl))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StateFuture<'a, ()> {
        // The key goes: so does its pending delta, which a later flush would bring back.
        let _dropped = self.buffer.take(key);
        self.inner.delete(key)
    }

    fn take<'a>(
        &'a self,
        key: &'a str,
        bucket: TokenBucket,
        cost: u32,
        max_wait: Duration,
    ) -> StateFuture<'a, TakeOutcome> {
        self.settled(key, move || self.inner.take(key, bucket, cost, max_wait))
    }

    fn get_bytes<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        self.settled(key, move || self.inner.get_bytes(key))
    }

    fn set_bytes<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()> {
        self.settled(key, move || self.inner.set_bytes(key, value, ttl))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool> {
        self.settled(key, move || self.inner.set_if_absent(key, value, ttl))
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool> {
        self.settled(key, move || {
            self.inner.compare_and_set(key, expected, value, ttl)
        })
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> StateFuture<'a, bool> {
        self.settled(key, move || self.inner.expire(key, ttl))
    }

    fn scan_counters<'a>(&'a self, prefix: &'a str) -> StateFuture<'a, Vec<(String, i64)>> {
        Box::pin(async move {
            StateBackend::flush(self).await?;
            self.inner.scan_counters(prefix).await
        })
    }
}

#[cfg(test)]
#[path = "write_behind_tests.rs"]
mod tests;
