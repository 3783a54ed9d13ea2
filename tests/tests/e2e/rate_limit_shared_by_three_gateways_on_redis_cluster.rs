//! A fleet of three gateways keeps its shared state in a Redis Cluster (`[state] backend =
//! "redis-cluster"`, three `redis-server` nodes started by the test): a rate limit of 100 per
//! minute holds for the fleet as a whole. 150 requests spread over the three gateways, all at
//! once: exactly 100 are admitted and 50 refused with 429. The sliding window admits exactly
//! `limit` within one window; the token bucket exactly its burst, plus the tokens it refilled
//! (one per 600 ms) while the requests ran.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tollgate_tests::redis_cluster::RedisCluster;
use tollgate_tests::{Gateway, Upstream, get};

fn config(upstream: &str, nodes: &[String], key_prefix: &str) -> String {
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[state]
backend = "redis-cluster"
nodes = [{nodes}]
timeout_ms = 2000
key_prefix = "{key_prefix}"

[upstreams.echo]
targets = ["{upstream}"]

# 150 requests at once on a 2-core box: the plugin's deadline (and its wait for an instance) is
# wall time, and this test is about counting, not the sandbox.
[plugins.window]
module = "{{plugins}}/rate_limit.wasm"
pool_size = 4
timeout_ms = 1000
config = {{ limit = 100, period = "1m", algorithm = "sliding-window", key = ["route"] }}

[plugins.bucket]
module = "{{plugins}}/rate_limit.wasm"
pool_size = 4
timeout_ms = 1000
config = {{ limit = 100, period = "1m", key = ["route"] }}

[[routes]]
name = "window"
path_prefix = "/window"
upstream = "echo"
chain = ["window"]

[[routes]]
name = "bucket"
path_prefix = "/bucket"
upstream = "echo"
chain = ["bucket"]
"#,
        nodes = nodes.join(", ")
    )
}

/// Send `n` requests to `path`, spread round-robin over the gateways, all at once; count the
/// 200s and the 429s (anything else fails the test).
async fn admitted(gateways: &[Gateway], path: &str, n: usize) -> (usize, usize) {
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
                assert_eq!(reply.json()["error"], "rate_limited");
            }
            other => panic!(
                "unexpected {other}: {}",
                String::from_utf8_lossy(&reply.body)
            ),
        }
    }
    (ok, limited)
}

/// Windows are aligned to the minute: when fewer than 20 s of this one are left, wait for the
/// next, so that all the requests fall into one window.
async fn well_inside_a_minute() {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into > 40_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into as u64 + 200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_of_100_per_minute_shared_by_three_gateways_admits_exactly_100() {
    let cluster = RedisCluster::start().await;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("tollgate-test:fleet:{}:{nanos}:", std::process::id());
    let upstream = Upstream::echo("echo").await;
    let config = config(&upstream.target(), &cluster.urls(), &prefix);
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(Gateway::start(&config).await);
    }

    well_inside_a_minute().await;
    assert_eq!(admitted(&gateways, "/window", 150).await, (100, 50));

    // The token bucket (the default algorithm) refills one token every 600 ms.
    let started = Instant::now();
    let (ok, limited) = admitted(&gateways, "/bucket", 150).await;
    let refilled = (started.elapsed().as_millis() / 600) as usize;
    assert_eq!(ok + limited, 150);
    assert!(
        (100..=100 + refilled).contains(&ok),
        "token bucket admitted {ok}; want 100 plus at most {refilled} refilled"
    );
    if refilled == 0 {
        assert_eq!(ok, 100);
    }

    for gateway in gateways {
        gateway.shutdown().await;
    }
}
