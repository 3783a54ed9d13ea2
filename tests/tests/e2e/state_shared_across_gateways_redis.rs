//! Two gateways pointed at the same Redis and key prefix share one token bucket and one counter:
//! together they admit exactly the limit. With the memory backend each gateway has its own.

#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use tollgate_tests::{Gateway, Upstream, get};

fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tollgate-test:{test}:{}:{nanos}:", std::process::id())
}

fn config(upstream: &str, state: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

{state}

[upstreams.echo]
targets = ["{upstream}"]

# 10 tokens, one more every 100 s: no refill during the test.
[plugins.bucket]
module = "{{fixtures}}/limiter.wasm"
config = {{ mode = "take", key = "shared", capacity = 10, refill_per_second = 0.01 }}

[plugins.window]
module = "{{fixtures}}/limiter.wasm"
config = {{ mode = "incr", key = "window", limit = 7, window_ms = 60000 }}

[[routes]]
name = "bucket"
path_prefix = "/bucket"
upstream = "echo"
chain = ["bucket"]

[[routes]]
name = "window"
path_prefix = "/window"
upstream = "echo"
chain = ["window"]
"#
    )
}

/// Send `n` requests to `path`, alternating between the gateways, all at once; count 200s and
/// 429s.
async fn admitted(gateways: &[&Gateway], path: &str, n: usize) -> (usize, usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = gateways[i % gateways.len()].url(path);
        tasks.push(tokio::spawn(async move { get(&url, &[]).await }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status.as_u16() {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert!(reply.header("retry-after-ms").is_some());
            }
            other => panic!(
                "unexpected {other}: {}",
                String::from_utf8_lossy(&reply.body)
            ),
        }
    }
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_share_one_bucket_and_one_counter_in_redis() {
    let upstream = Upstream::echo("echo").await;
    let state = format!(
        "[state]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\ntimeout_ms = 1000\nkey_prefix = \"{}\"",
        unique_prefix("shared")
    );
    let a = Gateway::start(&config(&upstream.target(), &state)).await;
    let b = Gateway::start(&config(&upstream.target(), &state)).await;

    assert_eq!(admitted(&[&a, &b], "/bucket", 30).await, (10, 20));
    assert_eq!(admitted(&[&a, &b], "/window", 20).await, (7, 13));

    // What the plugin saw: the bucket is empty for both gateways.
    let reply = get(&b.url("/bucket/again"), &[]).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error"], "rate_limited");

    // The admin usage view reads the same counter, under its full (plugin-namespaced) key.
    let counters = a.running.as_ref().unwrap().gateway.state();
    let found = counters.scan_counters("window:").await.unwrap();
    assert_eq!(found, vec![("window:window".to_owned(), 20)]);

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_memory_backend_each_gateway_counts_alone() {
    let upstream = Upstream::echo("echo").await;
    let a = Gateway::start(&config(&upstream.target(), "")).await;
    let b = Gateway::start(&config(&upstream.target(), "")).await;

    assert_eq!(admitted(&[&a, &b], "/bucket", 30).await, (20, 10));
    let reply = get(&a.url("/window"), &[]).await;
    let echoed = reply.json();
    assert_eq!(echoed["headers"]["x-limiter"][0], "ok");

    a.shutdown().await;
    b.shutdown().await;
}
