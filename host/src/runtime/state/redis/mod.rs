//! The Redis backend: state shared by every gateway pointed at the same Redis (one node, or a
//! Redis Cluster) and key prefix.
//!
//! Each thread that uses the backend has its own connection ([`per_thread`]): the calls of a
//! worker's requests are pipelined on the worker's own connection, and none blocks a thread or
//! wakes another. One node: an auto-reconnecting multiplexed connection
//! (`redis::aio::ConnectionManager`); a dropped connection is re-opened in the background while
//! calls fail fast. A cluster: a `ClusterConnection`, opened on first use in the background
//! ([`cluster`]), that keeps a multiplexed connection per node, routes each call by its key's
//! hash slot and follows `MOVED`/`ASK` and failovers. `rediss://` URLs speak TLS (rustls, the
//! system's trusted roots).
//!
//! Every call is one round trip bounded by `timeout`; read-modify-write operations (`incr` with
//! its TTL, `incr_many`, `take`) are Lua scripts ([`lua`]), so they are atomic across gateways
//! (`EVALSHA`, falling back to loading the script on `NOSCRIPT`). Token buckets use Redis's own
//! clock (`TIME`), the one clock every gateway shares (in a cluster: the clock of the node that
//! holds the bucket).
//!
//! **Atomicity in a cluster.** A script's keys must share one hash slot, so every single-key
//! operation is exactly as atomic as on one node. `incr_many` runs one script per slot of its
//! batch, concurrently (see [`cluster`]): every key is checked first, so a key of another kind
//! still fails the batch with no effect, but the batch is atomic per slot, not as a whole: a
//! reader can see one slot's counters updated before another's, and a backend failure (or a
//! write of another kind racing the check) can leave some slots applied. Counters stay exact:
//! each slot's increments are applied exactly once. Keys that must move together can share a
//! slot with a hash tag (`{user42}:a`, `{user42}:b`).

mod cluster;
mod lua;
mod per_thread;
mod scan;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Cmd, Pipeline, RedisError, RedisFuture, Script, Value};

use self::cluster::LazyCluster;
use self::lua::{CAS_LUA, CHECK_COUNTERS_LUA, EXPIRE_LUA, INCR_LUA, INCR_MANY_LUA, TAKE_LUA};
use self::per_thread::PerThread;
use super::{StateBackend, StateError, StateFuture, TakeOutcome, TokenBucket};

/// Where the Redis backend connects and how long it waits (one Redis node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    pub url: String,
    /// Bound on every call (one round trip, or a reconnect in progress).
    pub timeout: Duration,
    /// Prepended to every key (`tollgate:` by default), so several gateway fleets or tests can
    /// share one Redis.
    pub key_prefix: String,
}

/// Where the Redis Cluster backend connects and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisClusterOptions {
    /// Seed nodes, `redis://[user:password@]host:port` (or all `rediss://`): the client asks
    /// them for the cluster's layout and then talks to every primary. One reachable seed is
    /// enough; list several so that start-up does not depend on one node.
    pub nodes: Vec<String>,
    /// Bound on every call (including redirections, or the first connection in progress).
    pub timeout: Duration,
    /// Prepended to every key, as [`RedisOptions::key_prefix`].
    pub key_prefix: String,
}

/// The connection a call uses, taken per call (both kinds are handles to connection tasks).
#[derive(Clone)]
enum Conn {
    Node(ConnectionManager),
    Cluster(Arc<LazyCluster>),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(lazy) => Box::pin(async move {
                let mut conn = lazy.get().await?;
                conn.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(lazy) => Box::pin(async move {
                let mut conn = lazy.get().await?;
                conn.req_packed_commands(pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(conn) => conn.get_db(),
            Conn::Cluster(_) => 0,
        }
    }
}

/// State in Redis or a Redis Cluster. Cheap to share; create one per process.
pub struct RedisState {
    /// Each thread's connection ([`per_thread`]).
    connections: PerThread,
    timeout: Duration,
    key_prefix: String,
    /// `redis` or `redis-cluster`, the `backend` label of `tollgate_state_errors_total`.
    backend: &'static str,
    incr: Script,
    incr_many: Script,
    check_counters: Script,
    take: Script,
    cas: Script,
    expire: Script,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("backend", &self.backend)
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
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
        let connections = PerThread::new(Box::new(move || {
            client
                .get_connection_manager_lazy(config.clone())
                .map(Conn::Node)
                .map_err(|e| StateError::Invalid(format!("redis: {e}")))
        }))?;
        Ok(Self::with(
            connections,
            opts.timeout,
            opts.key_prefix,
            "redis",
        ))
    }

    /// A backend for the Redis Cluster that `opts.nodes` belong to. Connects lazily, as
    /// [`RedisState::new`]; fails only on node URLs the client cannot use together.
    pub fn cluster(opts: RedisClusterOptions) -> Result<Self, StateError> {
        let (nodes, timeout) = (opts.nodes, opts.timeout);
        let connections = PerThread::new(Box::new(move || {
            LazyCluster::new(&nodes, timeout).map(|lazy| Conn::Cluster(Arc::new(lazy)))
        }))?;
        Ok(Self::with(
            connections,
            opts.timeout,
            opts.key_prefix,
            "redis-cluster",
        ))
    }

    fn with(
        connections: PerThread,
        timeout: Duration,
        key_prefix: String,
        backend: &'static str,
    ) -> Self {
        Self {
            connections,
            timeout,
            key_prefix,
            backend,
            incr: Script::new(INCR_LUA),
            incr_many: Script::new(INCR_MANY_LUA),
            check_counters: Script::new(CHECK_COUNTERS_LUA),
            take: Script::new(TAKE_LUA),
            cas: Script::new(CAS_LUA),
            expire: Script::new(EXPIRE_LUA),
        }
    }

    /// The connection for a call made on this thread.
    fn conn(&self) -> Result<Conn, StateError> {
        self.connections.get()
    }

    /// Check that Redis answers within the timeout (used at start-up for a log line).
    pub async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        self.bounded("ping", async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(|_| ())
    }

    /// `redis` or `redis-cluster`.
    pub fn backend_name(&self) -> &'static str {
        self.backend
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// Run one call under the timeout; count and classify failures.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StateError> {
        self.within(op, async { call.await.map_err(classify) })
            .await
    }

    /// Run a call made of several round trips (already classified) under one timeout; count
    /// backend failures.
    async fn within<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StateError>>,
    ) -> Result<T, StateError> {
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e,
            Err(_) => StateError::Backend(format!(
                "{} did not answer within {} ms",
                self.backend,
                self.timeout.as_millis()
            )),
        };
        if result.is_backend() {
            metrics::counter!("tollgate_state_errors_total", "backend" => self.backend, "op" => op)
                .increment(1);
        }
        Err(result)
    }

    /// One `incr_many` script (`check`: the read-only check) over `ops`, whose keys share one
    /// hash slot in a cluster: the new values in order, or `WrongKind` naming the first key that
    /// does not hold a counter (with no effect).
    async fn incr_many_script(
        &self,
        mut conn: Conn,
        ops: &[(&str, i64, Option<Duration>)],
        check: bool,
    ) -> Result<Vec<i64>, StateError> {
        let script = if check {
            &self.check_counters
        } else {
            &self.incr_many
        };
        let mut call = script.prepare_invoke();
        for &(key, delta, ttl) in ops {
            call.key(self.key(key));
            if !check {
                call.arg(delta).arg(ttl.map_or(0, ms));
            }
        }
        let mut reply: Vec<i64> = call.invoke_async(&mut conn).await.map_err(classify)?;
        let want = if check { 1 } else { ops.len() + 1 };
        match reply.first().copied() {
            Some(0) if reply.len() == want => {
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

impl StateBackend for RedisState {
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> StateFuture<'a, i64> {
        Box::pin(async move {
            let mut conn = self.conn()?;
            let full = self.key(key);
            let ttl = ttl.map_or(0, ms);
            let mut call = self.incr.key(&full);
            call.arg(delta).arg(ttl);
            self.bounded("incr", call.invoke_async::<i64>(&mut conn))
                .await
                .map_err(with_key(key))
        })
    }

    /// One node: one `EVALSHA` (one round trip, atomic as a whole) with every key of the batch.
    /// A cluster: one per hash slot of the batch, concurrently ([`cluster::incr_many`]).
    fn incr_many<'a>(
        &'a self,
        ops: &'a [(&'a str, i64, Option<Duration>)],
    ) -> StateFuture<'a, Vec<i64>> {
        Box::pin(async move {
            if ops.is_empty() {
                return Ok(Vec::new());
            }
            let call = async {
                match self.conn()? {
                    conn @ Conn::Node(_) => self.incr_many_script(conn, ops, false).await,
                    Conn::Cluster(_) => cluster::incr_many(self, ops).await,
                }
            };
            self.within("incr_many", call).await
        })
    }

    fn get_counter<'a>(&'a self, key: &'a str) -> StateFuture<'a, i64> {
        Box::pin(async move {
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
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
            let mut conn = self.conn()?;
            let full = self.key(key);
            let mut call = self.expire.key(&full);
            call.arg(ttl.map_or(0, |t| ms(t).max(1)));
            let existed: i64 = self.bounded("expire", call.invoke_async(&mut conn)).await?;
            Ok(existed == 1)
        })
    }

    fn scan_counters<'a>(&'a self, prefix: &'a str) -> StateFuture<'a, Vec<(String, i64)>> {
        Box::pin(scan::counters(self, prefix))
    }
}
