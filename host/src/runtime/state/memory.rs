//! The in-process backend: a map in 16 shards, each under its own mutex, bounded in entries and
//! bytes.

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

/// Bytes an entry is charged: its key, its value and a fixed overhead for the map's bookkeeping.
fn charge(key: &str, value: &Value) -> usize {
    const OVERHEAD: usize = 64;
    let value = match value {
        Value::Text(s) => s.len(),
        Value::Binary(b) => b.len(),
        Value::Counter(_) | Value::Bucket(_) => 8,
    };
    key.len() + value + OVERHEAD
}

/// How many entries one eviction looks at to pick the one closest to expiry (sampling, as
/// Redis does, rather than keeping an ordered index).
const EVICTION_SAMPLE: usize = 16;

/// One shard: entries, the bytes they are charged, and when expired ones were last swept.
#[derive(Debug, Default)]
struct Map {
    entries: HashMap<String, Entry>,
    bytes: usize,
    sweep_at_len: usize,
    max_entries: usize,
    max_bytes: usize,
    evicted: u64,
    swept_full_at: Option<Instant>,
}

impl Map {
    /// The live entry under `key`, in one look-up. An expired entry is left in place: a write
    /// replaces it ([`Map::insert`] removes it first) and sweeps drop it.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        self.entries.get_mut(key).filter(|e| e.live(now))
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(charge(key, &old.value));
        }
    }

    /// Store `value` under `key`, making room first: expired entries go, then (past the caps)
    /// the sampled entry closest to expiry, entries without expiry last.
    fn insert(&mut self, key: &str, entry: Entry, now: Instant) {
        self.remove(key);
        let cost = charge(key, &entry.value);
        self.maybe_sweep(now);
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries
                || self.bytes.saturating_add(cost) > self.max_bytes)
        {
            let victim = self
                .entries
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|(_, e)| e.expires.map_or((1, now), |at| (0, at)))
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            self.remove(&victim);
            self.evicted += 1;
        }
        self.bytes = self.bytes.saturating_add(cost);
        self.entries.insert(key.to_owned(), entry);
    }

    /// Store a binary value (the 0.2.0 operations).
    fn put_binary(&mut self, key: &str, value: &[u8], ttl: Option<Duration>, now: Instant) {
        let expires = ttl.and_then(|t| now.checked_add(t));
        let value = Value::Binary(value.to_vec());
        self.insert(key, Entry { value, expires }, now);
    }

    /// Drop expired entries once the map has doubled since the last sweep, so keys that are
    /// never read again do not accumulate (amortised O(1) per insert); when the shard is full,
    /// also at most once a second, so a full shard evicts only what is really live.
    fn maybe_sweep(&mut self, now: Instant) {
        let full = self.entries.len() >= self.max_entries || self.bytes >= self.max_bytes;
        let full_sweep_due = full
            && self
                .swept_full_at
                .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if self.entries.len() >= self.sweep_at_len.max(1024) || full_sweep_due {
            let before = self.entries.len();
            self.entries.retain(|_, e| e.live(now));
            if self.entries.len() != before {
                self.bytes = self.entries.iter().map(|(k, e)| charge(k, &e.value)).sum();
            }
            self.sweep_at_len = self.entries.len().saturating_mul(2);
            if full {
                self.swept_full_at = Some(now);
            }
        }
    }
}

/// Shards of the map: operations on different keys rarely wait for each other.
const SHARDS: usize = 16;

/// Default caps of the whole store (see `[limits] state_max_entries` / `state_max_bytes`).
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;
/// 256 MiB.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// The in-process backend: exact under concurrency (each operation holds one shard's lock
/// briefly), expiry checked on access and swept as the map grows, bounded in entries and bytes
/// (past them the entry closest to expiry among a sample is evicted). Lost on restart.
#[derive(Debug)]
pub struct MemoryState {
    shards: Box<[Mutex<Map>]>,
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
    /// An empty store with the default caps.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }

    /// An empty store holding at most `max_entries` entries and `max_bytes` bytes (keys, values
    /// and 64 bytes of overhead per entry).
    pub fn with_limits(max_entries: usize, max_bytes: usize) -> Self {
        let shard = |total: usize| total.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Map {
                        max_entries: shard(max_entries),
                        max_bytes: shard(max_bytes),
                        ..Map::default()
                    })
                })
                .collect(),
            epoch: Instant::now(),
        }
    }

    /// Entries evicted to stay within the caps since the store was made.
    pub fn evictions(&self) -> u64 {
        self.shards
            .iter()
            .filter_map(|m| m.lock().ok().map(|m| m.evicted))
            .sum()
    }

    /// Live and not yet swept entries, and the bytes they are charged.
    pub fn usage(&self) -> (usize, usize) {
        self.shards
            .iter()
            .filter_map(|m| m.lock().ok().map(|m| (m.entries.len(), m.bytes)))
            .fold((0, 0), |(n, b), (n2, b2)| (n + n2, b + b2))
    }

    fn with<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Map, Instant) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut map = self.shards[shard_of(key)].lock().map_err(|_| poisoned())?;
        f(&mut map, Instant::now())
    }

    /// `incr_many` under the locks of every shard its keys live in (taken in shard order, the
    /// only place that holds more than one), so the batch is atomic as a whole: all keys are
    /// checked before any is changed.
    fn incr_all(&self, ops: &[(&str, i64, Option<Duration>)]) -> Result<Vec<i64>, StateError> {
        // Each key is hashed once: its shard, then its slot among the locked maps.
        let of_op: Vec<usize> = ops.iter().map(|(key, _, _)| shard_of(key)).collect();
        let mut shards = of_op.clone();
        shards.sort_unstable();
        shards.dedup();
        let mut maps = Vec::with_capacity(shards.len());
        for &i in &shards {
            maps.push(self.shards[i].lock().map_err(|_| poisoned())?);
        }
        let slot = |shard: &usize| shards.binary_search(shard).unwrap_or(0);
        let now = Instant::now();
        for (&(key, _, _), shard) in ops.iter().zip(&of_op) {
            let kind = maps[slot(shard)].live(key, now).map(|e| &e.value);
            if kind.is_some_and(|v| !matches!(v, Value::Counter(_))) {
                return Err(not_a(key, "counter"));
            }
        }
        ops.iter()
            .zip(&of_op)
            .map(|(&(key, delta, ttl), shard)| {
                incr_in(&mut maps[slot(shard)], key, delta, ttl, now)
            })
            .collect()
    }
}

/// The shard `key` lives in.
fn shard_of(key: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize % SHARDS
}

fn poisoned() -> StateError {
    StateError::Backend("memory state lock poisoned".into())
}

/// `incr` on the shard that holds `key`.
fn incr_in(
    map: &mut Map,
    key: &str,
    delta: i64,
    ttl: Option<Duration>,
    now: Instant,
) -> Result<i64, StateError> {
    if let Some(entry) = map.live(key, now) {
        return match &mut entry.value {
            Value::Counter(n) => {
                *n = n.saturating_add(delta);
                Ok(*n)
            }
            Value::Text(_) | Value::Binary(_) | Value::Bucket(_) => Err(not_a(key, "counter")),
        };
    }
    let expires = ttl.and_then(|t| now.checked_add(t));
    map.insert(
        key,
        Entry {
            value: Value::Counter(delta),
            expires,
        },
        now,
    );
    Ok(delta)
}

impl StateBackend for MemoryState {
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> StateFuture<'a, i64> {
        let result = self.with(key, |map, now| incr_in(map, key, delta, ttl, now));
        Box::pin(std::future::ready(result))
    }

    fn incr_many<'a>(
        &'a self,
        ops: &'a [(&'a str, i64, Option<Duration>)],
    ) -> StateFuture<'a, Vec<i64>> {
        Box::pin(std::future::ready(self.incr_all(ops)))
    }

    fn get_counter<'a>(&'a self, key: &'a str) -> StateFuture<'a, i64> {
        let result = self.with(key, |map, now| match map.live(key, now).map(|e| &e.value) {
            None => Ok(0),
            Some(Value::Counter(n)) => Ok(*n),
            Some(Value::Text(_) | Value::Binary(_) | Value::Bucket(_)) => {
                Err(not_a(key, "counter"))
            }
        });
        Box::pin(std::future::ready(result))
    }

    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<String>> {
        let result = self.with(key, |map, now| {
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
        let result = self.with(key, |map, now| {
            let expires = ttl.and_then(|t| now.checked_add(t));
            let value = Value::Text(value.to_owned());
            map.insert(key, Entry { value, expires }, now);
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StateFuture<'a, ()> {
        let result = self.with(key, |map, _| {
            map.remove(key);
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
        let result = self.with(key, |map, now| {
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
                    map.remove(key);
                } else if let Some(e) = map
                    .entries
                    .get_mut(key)
                    .filter(|e| matches!(e.value, Value::Bucket(_)))
                {
                    // The common case: update in place, no allocation.
                    e.value = Value::Bucket(tat);
                    e.expires = now.checked_add(full_in);
                } else {
                    let value = Value::Bucket(tat);
                    let expires = now.checked_add(full_in);
                    map.insert(key, Entry { value, expires }, now);
                }
            }
            Ok(outcome)
        });
        Box::pin(std::future::ready(result))
    }

    fn get_bytes<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        let result = self.with(key, |map, now| {
            Ok(map.live(key, now).map(|e| match &e.value {
                Value::Counter(n) => n.to_string().into_bytes(),
                Value::Text(s) => s.as_bytes().to_vec(),
                Value::Binary(b) => b.clone(),
                Value::Bucket(tat) => format!("{tat:.3}").into_bytes(),
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
        let result = self.with(key, |map, now| {
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
        let result = self.with(key, |map, now| {
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
        let result = self.with(key, |map, now| {
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
                    None => map.remove(key),
                }
            }
            Ok(matches)
        });
        Box::pin(std::future::ready(result))
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> StateFuture<'a, bool> {
        let result = self.with(key, |map, now| {
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
        let now = Instant::now();
        let mut found = Vec::new();
        for shard in self.shards.iter() {
            let Ok(map) = shard.lock() else {
                return Box::pin(std::future::ready(Err(StateError::Backend(
                    "memory state lock poisoned".into(),
                ))));
            };
            found.extend(
                map.entries
                    .iter()
                    .filter(|(k, e)| k.starts_with(prefix) && e.live(now))
                    .filter_map(|(k, e)| match e.value {
                        Value::Counter(n) => Some((k.clone(), n)),
                        Value::Text(_) | Value::Binary(_) | Value::Bucket(_) => None,
                    }),
            );
        }
        let result = Ok(found);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
