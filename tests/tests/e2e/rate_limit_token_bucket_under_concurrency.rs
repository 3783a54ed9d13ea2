//! A token bucket of 100 with a slow refill (100 per hour) admits exactly 100 of 1,000
//! concurrent requests; every refusal is a 429 with `Retry-After`, the `RateLimit-*` headers and
//! a JSON body, and every admitted response carries the quota it left. With the Redis backend
//! (the real Redis on 127.0.0.1:6379, as in CI) two gateways share the limit exactly. A bad
//! config fails the load naming each bad field.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use bytes::Bytes;
use http::Method;
use tollgate_tests::{Gateway, Reply, Upstream, client, send};

fn config(upstream: &Upstream, limit: &str) -> String {
    config_with_state(upstream, limit, "")
}

fn config_with_state(upstream: &Upstream, limit: &str, state: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

{state}

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.limit]
module = "{{plugins}}/rate_limit.wasm"
pool_size = 4
# A 2-core CI box running 1,000 requests at once starves threads: the CPU deadline is wall
# time, and this test is about counting, not the sandbox.
timeout_ms = 1000
config = {{ {limit} }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["limit"]
"#,
        upstream = upstream.target()
    )
}

fn number(reply: &Reply, name: &str) -> u64 {
    reply
        .header(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", reply.headers))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_against_a_limit_of_100() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(
        &upstream,
        r#"limit = 100, period = "1h", burst = 100, key = ["ip"]"#,
    ))
    .await;

    let client = client();
    let url = gateway.url("/api/x");
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { send(&client, Method::GET, &url, &[], Bytes::new()).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }

    let mut by_status = std::collections::BTreeMap::new();
    for r in &replies {
        *by_status.entry(r.status.as_u16()).or_insert(0) += 1;
    }
    let odd: Vec<_> = replies
        .iter()
        .filter(|r| r.status != 200 && r.status != 429)
        .take(3)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(by_status.len(), 2, "statuses {by_status:?}: {odd:?}");
    let (ok, refused): (Vec<_>, Vec<_>) = replies.iter().partition(|r| r.status == 200);
    assert_eq!(ok.len(), 100, "admitted");
    assert_eq!(refused.len(), 900, "refused");

    // Each admitted request took one token atomically: the quotas they report are exactly
    // 99, 98, ..., 0, and the bucket is full again after (100 - remaining) × 36 s.
    let remaining: BTreeSet<u64> = ok
        .iter()
        .map(|r| number(r, "ratelimit-remaining"))
        .collect();
    assert_eq!(remaining, (0..100).collect::<BTreeSet<u64>>());
    for r in &ok {
        assert_eq!(number(r, "ratelimit-limit"), 100);
        assert_eq!(r.header("ratelimit-policy"), Some("100;w=3600"));
        let used = 100 - number(r, "ratelimit-remaining");
        let reset = number(r, "ratelimit-reset");
        // Counted down from the moment of the take to the response (slow on a loaded box).
        assert!(
            ((used * 36).saturating_sub(10)..=used * 36).contains(&reset),
            "reset {reset} s after {used} taken"
        );
    }

    // One token every 36 s: a refused client may retry within 36 s, and the bucket is full
    // again within the hour.
    for r in &refused {
        assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
        let retry = number(r, "retry-after");
        assert!((1..=36).contains(&retry), "retry-after {retry}");
        assert_eq!(number(r, "ratelimit-limit"), 100);
        assert_eq!(number(r, "ratelimit-remaining"), 0);
        let reset = number(r, "ratelimit-reset");
        assert!((3590..=3600).contains(&reset), "reset {reset}");
        let body = r.json();
        assert_eq!(body["error"], "rate_limited");
        assert_eq!(body["message"], "rate limit exceeded: 100 requests per 1h");
        let retry_ms = body["retry_after_ms"].as_u64().unwrap();
        assert_eq!(retry_ms.div_ceil(1000), retry, "body and header agree");
    }
    gateway.shutdown().await;
}

/// Send `n` GETs at once, spread round-robin over the gateways, and count 200s and 429s.
async fn storm(gateways: &[&Gateway], n: usize) -> (usize, usize) {
    let client = client();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            let url = gateways[i % gateways.len()].url("/api/x");
            tokio::spawn(async move { send(&client, Method::GET, &url, &[], Bytes::new()).await })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status.as_u16() {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("{other}: {}", String::from_utf8_lossy(&reply.body)),
        }
    }
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_redis_admit_exactly_the_limit_together() {
    let upstream = Upstream::echo("echo").await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let state = format!(
        r#"
[state]
backend = "redis"
url = "redis://127.0.0.1:6379"
# 1,000 requests at once on a small CI box queue up in the client: not a Redis outage.
timeout_ms = 5000
key_prefix = "tollgate-test:rate-limit:{}:{nanos}:"
"#,
        std::process::id()
    );
    let limit = r#"limit = 100, period = "1h", key = ["ip"]"#;
    let a = Gateway::start(&config_with_state(&upstream, limit, &state)).await;
    let b = Gateway::start(&config_with_state(&upstream, limit, &state)).await;
    assert_eq!(storm(&[&a, &b], 400).await, (100, 300));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_can_be_turned_off() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(
        &upstream,
        r#"limit = 1, period = "1h", headers = false"#,
    ))
    .await;
    let client = client();
    let first = send(&client, Method::GET, &gateway.url("/x"), &[], Bytes::new()).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-remaining"), None);
    let second = send(&client, Method::GET, &gateway.url("/x"), &[], Bytes::new()).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.header("ratelimit-remaining"), None);
    assert_eq!(
        second.header("retry-after"),
        Some("3600"),
        "Retry-After always"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_fails_the_load_naming_every_field() {
    let upstream = Upstream::echo("echo").await;
    let err = match Gateway::try_start(&config(
        &upstream,
        r#"limit = 0, period = "soon", key = ["user"], on_limit = "queue", max_wait_ms = 60000"#,
    ))
    .await
    {
        Ok(_) => panic!("a bad rate-limit config must fail the load"),
        Err(e) => e.to_string(),
    };
    for part in [
        "limit: must be at least 1",
        "period: \"soon\"",
        "key[0]",
        "max_wait_ms: 60000",
    ] {
        assert!(err.contains(part), "{part} not in {err}");
    }
}
