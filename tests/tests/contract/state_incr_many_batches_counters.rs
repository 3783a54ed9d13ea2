//! A plugin that updates several counters per request batches them with `state.incr-many` (or
//! `add-many`, which does not wait for the values): the
//! values and TTLs are those of as many `incr`s, a batch touching a key of another kind changes
//! nothing, and concurrent batches stay exact, in the in-process backend and in a real Redis on
//! 127.0.0.1:6379. Through the gateway, the `meter` plugin counts each request with one batch:
//! its usage is exact with either backend. With Redis and `write_behind_ms = 0` each request is
//! one script call (one round trip), seen on the wire with `MONITOR`; with write-behind (the
//! default) many requests' sums go in one call, sent by the interval, by a read of the usage and
//! at shutdown; every counter carries the retention TTL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tollgate::runtime::{
    MemoryState, RedisOptions, RedisState, StateBackend, StateError, TokenBucket,
};
use tollgate_tests::{Gateway, Upstream, client, get, send};

const REDIS: &str = "127.0.0.1:6379";

fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tollgate-test:{what}:{}:{nanos}:", std::process::id())
}

fn redis(prefix: &str) -> Arc<dyn StateBackend> {
    Arc::new(
        RedisState::new(RedisOptions {
            url: format!("redis://{REDIS}"),
            timeout: Duration::from_secs(2),
            key_prefix: prefix.to_owned(),
        })
        .unwrap(),
    )
}

pub(super) async fn counters_in_batches(state: Arc<dyn StateBackend>, backend: &str) {
    let ms = |n| Some(Duration::from_millis(n));
    // In order; a key listed twice is added to twice; the TTL applies when the counter is created.
    let values = state
        .incr_many(&[
            ("p:a", 2, ms(400)),
            ("p:b", 5, None),
            ("p:a", 3, ms(60_000)),
        ])
        .await
        .unwrap();
    assert_eq!(values, vec![2, 5, 5], "{backend}");
    assert_eq!(state.incr_many(&[]).await.unwrap(), Vec::<i64>::new());
    assert_eq!(
        state.incr_many(&[("p:b", -2, ms(1))]).await.unwrap(),
        vec![3],
        "{backend}: an existing counter keeps its (lack of) expiry"
    );

    // A value or a token bucket among the keys: the batch fails naming it and changes nothing.
    state.set_bytes("p:v", b"text", None).await.unwrap();
    let bucket = TokenBucket::new(5, 1.0).unwrap();
    state.take("p:t", bucket, 1, Duration::ZERO).await.unwrap();
    for bad in ["p:v", "p:t"] {
        let err = state
            .incr_many(&[("p:b", 1, None), (bad, 1, None), ("p:new", 1, None)])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StateError::WrongKind { key, expected: "counter" } if key == bad),
            "{backend}: {err:?}"
        );
        assert!(
            !err.is_backend(),
            "{backend}: a mistake, not a backend failure"
        );
    }
    assert_eq!(state.get_counter("p:b").await.unwrap(), 3, "{backend}");
    assert_eq!(state.get_bytes("p:new").await.unwrap(), None, "{backend}");
    assert_eq!(
        state.get_bytes("p:v").await.unwrap().as_deref(),
        Some(&b"text"[..])
    );

    // A counter that would overflow stops at the bound, in both backends, with the rest of the
    // batch applied once (never half): the memory backend's `saturating_add`, Redis's script.
    state.incr("p:big", i64::MAX - 1, None).await.unwrap();
    state.incr("p:small", i64::MIN + 1, None).await.unwrap();
    let values = state
        .incr_many(&[
            ("p:o1", 1, None),
            ("p:big", 5, None),
            ("p:small", -5, None),
            ("p:o2", 1, None),
        ])
        .await
        .unwrap();
    assert_eq!(values, vec![1, i64::MAX, i64::MIN, 1], "{backend}");
    assert_eq!(
        state.incr("p:big", 1, None).await.unwrap(),
        i64::MAX,
        "{backend}"
    );
    assert_eq!(state.get_counter("p:o1").await.unwrap(), 1, "{backend}");

    // Concurrent batches over the same keys, in different orders: exact totals.
    let keys: Vec<String> = (0..12).map(|i| format!("p:c{i}")).collect();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let state = Arc::clone(&state);
        let mut keys = keys.clone();
        keys.rotate_left(t);
        tasks.push(tokio::spawn(async move {
            let ops: Vec<(&str, i64, Option<Duration>)> =
                keys.iter().map(|k| (k.as_str(), 1, None)).collect();
            for _ in 0..25 {
                state.incr_many(&ops).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for k in &keys {
        assert_eq!(state.get_counter(k).await.unwrap(), 200, "{backend}: {k}");
    }

    // `p:a` was created with a 400 ms TTL (the second element did not renew it); `p:b` has none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state.get_counter("p:a").await.unwrap(), 0, "{backend}");
    assert_eq!(state.get_counter("p:b").await.unwrap(), 3, "{backend}");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_backend_batches_counters() {
    counters_in_batches(Arc::new(MemoryState::new()), "memory").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_backend_batches_counters() {
    counters_in_batches(redis(&unique("incr-many")), "redis").await;
}

/// One RESP command on a fresh connection to the test Redis, its reply as text lines.
async fn redis_command(args: &[&str]) -> String {
    let mut stream = TcpStream::connect(REDIS).await.unwrap();
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(out.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    // Small replies: read until a quiet moment.
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Every command Redis runs while it is open (`MONITOR`), as its text lines.
struct Monitor {
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    async fn start() -> Self {
        let mut stream = TcpStream::connect(REDIS).await.unwrap();
        stream.write_all(b"MONITOR\r\n").await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).await.unwrap();
        assert_eq!(ok.trim_end(), "+OK");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let task = tokio::spawn(async move {
            let mut line = String::new();
            while reader.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push(std::mem::take(&mut line));
            }
        });
        Self { lines, task }
    }

    fn stop(self) -> Vec<String> {
        self.task.abort();
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

fn config(upstream: &str, state: &str) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false
{state}
[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.meter]
module = "meter"
pool_size = 2
config = {{ retention_days = 1 }}

[plugins.alice]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "alice", set_context = {{ consumer = "alice" }} }}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = ["meter", "alice"]
"#
    )
}

/// The meter's log phase runs after the client has its response: poll until the usage of
/// `alice` reaches `want` requests.
async fn usage(gateway: &Gateway, want: u64) -> serde_json::Value {
    let url = format!(
        "http://{}/admin/usage?consumer=alice",
        gateway.admin.unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = get(&url, &[]).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let usage = reply.json();
        let total = usage["total"]["requests"].as_u64().unwrap();
        if total >= want || Instant::now() > deadline {
            assert_eq!(total, want, "usage: {usage}");
            return usage;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Send `n` POSTs with bodies of 10, 11, ... bytes; the bytes sent and received.
async fn traffic(gateway: &Gateway, n: usize) -> (u64, u64) {
    let (mut sent, mut received) = (0, 0);
    for i in 0..n {
        let reply = send(
            &client(),
            Method::POST,
            &gateway.url("/api/items"),
            &[],
            vec![b'x'; 10 + i],
        )
        .await;
        assert_eq!(reply.status, 200);
        sent += 10 + i as u64;
        received += reply.body.len() as u64;
    }
    (sent, received)
}

fn assert_usage(usage: &serde_json::Value, requests: u64, sent: u64, received: u64) {
    let api = &usage["routes"]["api"];
    assert_eq!(api["requests"], requests, "{usage}");
    assert_eq!(api["status"]["2xx"], requests, "{usage}");
    assert_eq!(api["request_bytes"], sent, "{usage}");
    assert_eq!(api["response_bytes"], received, "{usage}");
    assert_eq!(api["upstream_calls"], requests, "{usage}");
    assert!(
        api["upstream_latency_avg_us"].as_u64().unwrap() > 0,
        "{usage}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn meter_counts_exactly_with_the_memory_backend() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), "")).await;
    let (sent, received) = traffic(&gateway, 6).await;
    assert_usage(&usage(&gateway, 6).await, 6, sent, received);
}

/// `[state]` on Redis under `prefix`, `add-many` written behind every `write_behind_ms`.
fn redis_state(prefix: &str, write_behind_ms: u64) -> String {
    format!(
        "\n[state]\nbackend = \"redis\"\nkey_prefix = \"{prefix}\"\nwrite_behind_ms = {write_behind_ms}\n"
    )
}

/// The commands a client sent (not those a script ran: `[0 lua]`) that wrote the meter's keys
/// under `prefix`, each checked to carry all six fields in one `EVALSHA`.
fn meter_writes(lines: &[String], prefix: &str) -> usize {
    let meter_key = format!("{prefix}meter:usage:alice:api:");
    let writes: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&meter_key) && !l.contains(" lua]"))
        .filter(|l| !l.contains("\"SCAN\"") && !l.contains("\"MGET\""))
        .collect();
    for w in &writes {
        assert!(w.contains("\"EVALSHA\""), "{w}");
        for field in [
            "requests",
            "status_2xx",
            "request_bytes",
            "response_bytes",
            "upstream_us",
            "upstream_count",
        ] {
            assert!(w.contains(&format!(":{field}\"")), "{field}: {w}");
        }
    }
    writes.len()
}

/// The value of one of the meter's counters for `alice` on route `api`, read from Redis.
async fn meter_counter(prefix: &str, field: &str) -> i64 {
    let keys = redis_command(&["KEYS", &format!("{prefix}meter:usage:alice:api:*:{field}")]).await;
    let key = keys
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{field}` counter: {keys:?}"))
        .to_owned();
    let value = redis_command(&["GET", &key]).await;
    value.lines().nth(1).unwrap_or("").parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn meter_without_write_behind_makes_one_round_trip_per_request() {
    let prefix = unique("meter-batch");
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), &redis_state(&prefix, 0))).await;

    // Warm up (the script may need loading once), then watch five requests on the wire.
    let (mut sent, mut received) = traffic(&gateway, 1).await;
    usage(&gateway, 1).await;
    let monitor = Monitor::start().await;
    let (s, r) = traffic(&gateway, 5).await;
    (sent, received) = (sent + s, received + r);
    let counted = usage(&gateway, 6).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = monitor.stop();
    assert_usage(&counted, 6, sent, received);
    assert_eq!(meter_writes(&lines, &prefix), 5, "one call per request");
}

#[tokio::test(flavor = "multi_thread")]
async fn meter_writes_behind_in_one_round_trip_and_flushes_at_shutdown() {
    let prefix = unique("meter-behind");
    let upstream = Upstream::echo("echo").await;
    // An interval longer than the test: only reads and the shutdown send the sums.
    let gateway = Gateway::start(&config(&upstream.target(), &redis_state(&prefix, 60_000))).await;
    let (mut sent, mut received) = traffic(&gateway, 1).await;
    usage(&gateway, 1).await;

    let monitor = Monitor::start().await;
    let (s, r) = traffic(&gateway, 5).await;
    (sent, received) = (sent + s, received + r);
    // The log phases have run by now; nothing of theirs reached Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_read = monitor.lines.lock().unwrap().clone();
    assert_eq!(meter_writes(&before_read, &prefix), 0, "written behind");
    // The admin API's read sends the five requests' sums first: one call for all of them.
    let counted = usage(&gateway, 6).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = monitor.stop();
    assert_usage(&counted, 6, sent, received);
    assert_eq!(
        meter_writes(&lines, &prefix),
        1,
        "five requests summed into one call"
    );
    assert_eq!(meter_counter(&prefix, "requests").await, 6);

    // What is pending when the gateway stops is sent before it ends.
    traffic(&gateway, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(meter_counter(&prefix, "requests").await, 6, "still pending");
    gateway.shutdown().await;
    assert_eq!(
        meter_counter(&prefix, "requests").await,
        9,
        "sent at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn meter_written_behind_counts_exactly_under_concurrency() {
    let prefix = unique("meter-concurrent");
    let upstream = Upstream::echo("echo").await;
    // Sends every 5 ms race the adds of two workers' log phases.
    let config = config(&upstream.target(), &redis_state(&prefix, 5))
        .replace("[[listeners]]", "[server]\nworkers = 2\n\n[[listeners]]");
    let gateway = Gateway::start(&config).await;
    let url = gateway.url("/api/items");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = client();
            for _ in 0..25 {
                let reply = send(&http, Method::GET, &url, &[], Vec::new()).await;
                assert_eq!(reply.status, 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let counted = usage(&gateway, 400).await;
    assert_eq!(counted["routes"]["api"]["status"]["2xx"], 400, "{counted}");
    gateway.shutdown().await;
    assert_eq!(meter_counter(&prefix, "requests").await, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn meter_sums_wait_while_redis_is_down_and_show_as_pending() {
    // Nothing listens on port 1: every send fails within the timeout.
    let state = "\n[state]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\ntimeout_ms = 50\nwrite_behind_ms = 20\n";
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), state)).await;
    // The meter does not wait for Redis: requests are answered as usual.
    traffic(&gateway, 3).await;
    let metrics_url = format!("http://{}/metrics", gateway.admin.unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = get(&metrics_url, &[]).await;
        assert_eq!(reply.status, 200);
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        let pending = text
            .lines()
            .find_map(|l| l.strip_prefix("tollgate_state_write_behind_pending_keys "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        // Six counters of one consumer, route and hour: kept, not dropped.
        if pending == Some(6.0) {
            assert!(
                text.lines()
                    .any(|l| l == "tollgate_state_write_behind_dropped_total 0"),
                "nothing dropped: {text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "pending keys: {pending:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn meter_counters_carry_the_retention_ttl() {
    let prefix = unique("meter-ttl");
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), &redis_state(&prefix, 50))).await;
    let (sent, received) = traffic(&gateway, 2).await;
    assert_usage(&usage(&gateway, 2).await, 2, sent, received);
    let meter_key = format!("{prefix}meter:usage:alice:api:");

    // Every counter has the retention TTL: the end of its hour plus one day.
    let keys = redis_command(&["KEYS", &format!("{meter_key}*")]).await;
    let keys: Vec<&str> = keys.lines().filter(|l| l.starts_with(&meter_key)).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    let day = 86_400_000i64;
    for key in keys {
        let pttl = redis_command(&["PTTL", key]).await;
        let pttl: i64 = pttl.trim().trim_start_matches(':').parse().unwrap();
        assert!(
            (day - 60_000..=day + 3_600_000).contains(&pttl),
            "{key}: {pttl} ms"
        );
    }
}
