//! The Redis backend: state shared by every gateway pointed at the same Redis and key prefix.
//!
//! One auto-reconnecting multiplexed connection (`redis::aio::ConnectionManager`): calls from
//! every worker are pipelined on it, none blocks a thread, and a dropped connection is re-opened
//! in the background while calls fail fast. Every call is one round trip bounded by `timeout`;
//! read-modify-write operations (`incr` with its TTL, `incr_many`, `take`) are Lua scripts, so
//! they are atomic across gateways (`EVALSHA`, falling back to loading the script on
//! `NOSCRIPT`). Token buckets use Redis's own clock (`TIME`), the one clock every gateway shares.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};

use super::{StateBackend, StateError, StateFuture, TakeOutcome, TokenBucket};

/// `incr`: INCRBY, and the TTL only when this call created the counter.
const INCR_LUA: &str = r"
local existed = redis.call('EXISTS', KEYS[1])
local ok, value = pcall(redis.call, 'INCRBY', KEYS[1], ARGV[1])
if not ok then return redis.error_reply('WRONGKIND counter') end
if existed == 0 and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
";

/// `incr_many`: KEYS[i] gets delta ARGV[2i-1] and TTL ARGV[2i] (ms, 0 = none), in order. Returns
/// {0, new values in order}, or {i} when KEYS[i] holds something INCRBY refuses. Every key is
/// checked first (absent, or an integer as INCRBY reads it), so such a batch has no effect; only
/// an INCRBY that overflows i64 can fail after earlier elements were applied.
const INCR_MANY_LUA: &str = r"
for i, key in ipairs(KEYS) do
  local ok, v = pcall(redis.call, 'GET', key)
  if not ok or (v and v ~= '0' and (#v > 20 or not string.match(v, '^%-?[1-9]%d*$'))) then
    return {i}
  end
end
local out = {0}
for i, key in ipairs(KEYS) do
  local existed = redis.call('EXISTS', key)
  local ok, value = pcall(redis.call, 'INCRBY', key, ARGV[2 * i - 1])
  if not ok then return {i} end
  if existed == 0 and tonumber(ARGV[2 * i]) > 0 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
  out[i + 1] = value
end
return out
";

/// `take`: the GCRA step of `gcra.rs`, on Redis's clock. ARGV: interval (ms per token), capacity,
/// cost, max wait (ms). Returns {granted, wait ms, remaining, ms until full}; the two times as
/// strings, since Redis would truncate Lua numbers to integers.
const TAKE_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local eps = 1e-6
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2]) * interval
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local v = tonumber(stored)
  if v == nil or string.find(stored, '.', 1, true) == nil then
    return redis.error_reply('WRONGKIND token bucket')
  end
  if v > now then tat = v end
end
local new_tat = tat + cost * interval
local wait = new_tat - burst - now
local granted = wait <= eps or wait <= max_wait + eps
local after = tat
if granted then after = new_tat end
local ahead = after - now
local remaining = math.floor((burst - ahead) / interval + eps)
if remaining < 0 then remaining = 0 end
if granted then
  local ttl = math.ceil(new_tat - now)
  if ttl > 0 then
    redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', ttl)
  else
    redis.call('DEL', KEYS[1])
  end
end
return {granted and 1 or 0, string.format('%.6f', wait), remaining, string.format('%.6f', ahead)}
";

/// `compare_and_set`: ARGV: expected, mode (`set` or `del`), new value, TTL ms (0 = none).
const CAS_LUA: &str = r"
local ok, cur = pcall(redis.call, 'GET', KEYS[1])
if not ok or cur ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
";

/// `expire`: ARGV: TTL ms (0 = remove the expiry). 1 when the key exists.
const EXPIRE_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
";

/// Keys per SCAN round trip in `scan_counters`.
const SCAN_BATCH: usize = 1000;
/// Bound on a whole `scan_counters` walk (each round trip is also bounded by `timeout`).
const SCAN_DEADLINE: Duration = Duration::from_secs(10);

/// Where the Redis backend connects and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Bound on every call (one round trip, or a reconnect in progress).
    pub timeout: Duration,
    /// Prepended to every key (`tollgate:` by default), so several gateway fleets or tests can
    /// share one Redis.
    pub key_prefix: String,
}

/// State in Redis. Cheap to share; create one per process.
pub struct RedisState {
    conn: ConnectionManager,
    opts: RedisOptions,
    incr: Script,
    incr_many: Script,
    take: Script,
    cas: Script,
    expire: Script,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// A backend for `opts.url`. Connects lazily: a gateway starts (and answers by each plugin's
    /// `on_state_error`) while Redis is down, and picks it up when it comes back. Fails only on a
    /// URL the client cannot use.
    pub fn new(opts: RedisOptions) -> Result<Self, StateError> {
        let client = redis::Client::open(opts.url.as_str())
            .map_err(|e| StateError::Invalid(format!("redis url: {e}")))?;
        // Few, quick reconnect attempts: while Redis is down calls fail by the timeout anyway,
        // and once the retries are spent the next call starts a new attempt at once.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(opts.timeout.max(Duration::from_secs(1))))
            .set_response_timeout(Some(opts.timeout.max(Duration::from_secs(1))));
        let conn = client
            .get_connection_manager_lazy(config)
            .map_err(|e| StateError::Invalid(format!("redis: {e}")))?;
        Ok(Self {
            conn,
            opts,
            incr: Script::new(INCR_LUA),
            incr_many: Script::new(INCR_MANY_LUA),
            take: Script::new(TAKE_LUA),
            cas: Script::new(CAS_LUA),
            expire: Script::new(EXPIRE_LUA),
        })
    }

    /// Check that Redis answers within the timeout (used at start-up for a log line).
    pub async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        self.bounded("ping", async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(|_| ())
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.opts.key_prefix)
    }

    /// Run one call under the timeout; count and classify failures.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StateError> {
        let result = match tokio::time::timeout(self.opts.timeout, call).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => classify(e),
            Err(_) => StateError::Backend(format!(
                "redis did not answer within {} ms",
                self.opts.timeout.as_millis()
            )),
        };
        if result.is_backend() {
            metrics::counter!("tollgate_state_errors_total", "backend" => "redis", "op" => op)
                .increment(1);
        }
        Err(result)
    }
}

/// Script refusals (`WRONGKIND <what>`) are the caller's mistake; anything else is the backend's.
fn classify(e: RedisError) -> StateError {
    if e.code() == Some("WRONGKIND") {
        let expected = match e.detail() {
            Some(d) if d.contains("bucket") => "token bucket",
            _ => "counter",
        };
        return StateError::WrongKind {
            key: String::new(),
            expected,
        };
    }
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_owned()
    } else {
        e.to_string()
    };
    StateError::Backend(format!("redis: {what}"))
}

/// Put the (unprefixed) key into a `WrongKind` error raised by a script.
fn with_key(key: &str) -> impl FnOnce(StateError) -> StateError + '_ {
    move |e| match e {
        StateError::WrongKind { expected, .. } => StateError::WrongKind {
            key: key.to_owned(),
            expected,
        },
        other => other,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole milliseconds, rounded up, from a script's decimal text (as `gcra::ceil_ms`).
fn ceil_ms(text: &str) -> u64 {
    let v: f64 = text.parse().unwrap_or(0.0);
    if v <= 1e-6 {
        0
    } else {
        (v - 1e-6).ceil() as u64
    }
}

/// Escape glob metacharacters for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl StateBackend for RedisState {
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> StateFuture<'a, i64> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            let ttl = ttl.map_or(0, ms);
            let mut call = self.incr.key(&full);
            call.arg(delta).arg(ttl);
            self.bounded("incr", call.invoke_async::<i64>(&mut conn))
                .await
                .map_err(with_key(key))
        })
    }

    /// One `EVALSHA` (one round trip, atomic as a whole) with every key of the batch.
    fn incr_many<'a>(
        &'a self,
        ops: &'a [(&'a str, i64, Option<Duration>)],
    ) -> StateFuture<'a, Vec<i64>> {
        Box::pin(async move {
            if ops.is_empty() {
                return Ok(Vec::new());
            }
            let mut conn = self.conn.clone();
            let mut call = self.incr_many.prepare_invoke();
            for &(key, delta, ttl) in ops {
                call.key(self.key(key)).arg(delta).arg(ttl.map_or(0, ms));
            }
            let mut reply: Vec<i64> = self
                .bounded("incr_many", call.invoke_async(&mut conn))
                .await?;
            match reply.first().copied() {
                Some(0) if reply.len() == ops.len() + 1 => {
                    reply.remove(0);
                    Ok(reply)
                }
                // The element (1-based) whose key does not hold a counter.
                Some(i) => match usize::try_from(i)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| ops.get(i))
                {
                    Some(&(key, _, _)) => Err(StateError::WrongKind {
                        key: key.to_owned(),
                        expected: "counter",
                    }),
                    None => Err(StateError::Backend(format!(
                        "redis: unexpected incr_many reply {reply:?}"
                    ))),
                },
                None => Err(StateError::Backend(
                    "redis: empty incr_many reply".to_owned(),
                )),
            }
        })
    }

    fn get_counter<'a>(&'a self, key: &'a str) -> StateFuture<'a, i64> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            let value: Option<String> = self
                .bounded("get_counter", conn.get::<_, Option<String>>(&full))
                .await?;
            match value {
                None => Ok(0),
                Some(text) => text.parse().map_err(|_| StateError::WrongKind {
                    key: key.to_owned(),
                    expected: "counter",
                }),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<String>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            self.bounded("get", conn.get::<_, Option<String>>(&full))
                .await
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            let mut cmd = redis::cmd("SET");
            cmd.arg(&full).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ms(ttl).max(1));
            }
            self.bounded("set", cmd.query_async::<()>(&mut conn)).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StateFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            self.bounded("delete", conn.del::<_, ()>(&full)).await
        })
    }

    fn take<'a>(
        &'a self,
        key: &'a str,
        bucket: TokenBucket,
        cost: u32,
        max_wait: Duration,
    ) -> StateFuture<'a, TakeOutcome> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            let mut call = self.take.key(&full);
            call.arg(bucket.interval_ms())
                .arg(bucket.capacity())
                .arg(cost)
                .arg(ms(max_wait));
            let (granted, wait, remaining, ahead): (i64, String, i64, String) = self
                .bounded("take", call.invoke_async(&mut conn))
                .await
                .map_err(with_key(key))?;
            Ok(TakeOutcome {
                granted: granted == 1,
                wait_ms: ceil_ms(&wait),
                remaining: u64::try_from(remaining).unwrap_or(0),
                reset_ms: ceil_ms(&ahead),
            })
        })
    }

    fn get_bytes<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            self.bounded("get", conn.get::<_, Option<Vec<u8>>>(&full))
                .await
        })
    }

    fn set_bytes<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(key)).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ms(ttl).max(1));
            }
            self.bounded("set", cmd.query_async::<()>(&mut conn)).await
        })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(key)).arg(value).arg("NX");
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ms(ttl).max(1));
            }
            let stored: Option<String> = self
                .bounded("set_if_absent", cmd.query_async(&mut conn))
                .await?;
            Ok(stored.is_some())
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StateFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            let mut call = self.cas.key(&full);
            call.arg(expected)
                .arg(if value.is_some() { "set" } else { "del" })
                .arg(value.unwrap_or_default())
                .arg(ttl.map_or(0, |t| ms(t).max(1)));
            let swapped: i64 = self
                .bounded("compare_and_set", call.invoke_async(&mut conn))
                .await?;
            Ok(swapped == 1)
        })
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> StateFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let full = self.key(key);
            let mut call = self.expire.key(&full);
            call.arg(ttl.map_or(0, |t| ms(t).max(1)));
            let existed: i64 = self.bounded("expire", call.invoke_async(&mut conn)).await?;
            Ok(existed == 1)
        })
    }

    fn scan_counters<'a>(&'a self, prefix: &'a str) -> StateFuture<'a, Vec<(String, i64)>> {
        Box::pin(async move {
            let walk = async {
                let mut conn = self.conn.clone();
                let pattern = format!("{}*", glob_escape(&self.key(prefix)));
                let mut cursor: u64 = 0;
                let mut out = Vec::new();
                loop {
                    let mut scan = redis::cmd("SCAN");
                    scan.arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_BATCH);
                    let (next, keys): (u64, Vec<String>) =
                        self.bounded("scan", scan.query_async(&mut conn)).await?;
                    if !keys.is_empty() {
                        let values: Vec<Option<String>> =
                            self.bounded("scan", conn.mget(&keys)).await?;
                        for (full, value) in keys.into_iter().zip(values) {
                            // Counters are integers; values and buckets (decimals) are skipped.
                            let Some(n) = value.and_then(|v| v.parse::<i64>().ok()) else {
                                continue;
                            };
                            if let Some(key) = full.strip_prefix(&self.opts.key_prefix) {
                                out.push((key.to_owned(), n));
                            }
                        }
                    }
                    if next == 0 {
                        return Ok(out);
                    }
                    cursor = next;
                }
            };
            match tokio::time::timeout(SCAN_DEADLINE, walk).await {
                Ok(result) => result,
                Err(_) => Err(StateError::Backend(format!(
                    "redis: scanning counters took more than {} s",
                    SCAN_DEADLINE.as_secs()
                ))),
            }
        })
    }
}
