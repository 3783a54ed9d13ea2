//! Two gateways share one Redis (the same `[state] key_prefix`): the meter's counters are shared,
//! so either gateway's admin API reports the usage of both. Needs Redis on 127.0.0.1:6379 (as
//! in CI).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tollgate_tests::{Gateway, Upstream, get};

fn config(upstream: &str, key_prefix: &str) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[state]
backend = "redis"
key_prefix = "{key_prefix}"

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.meter]
module = "meter"
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

async fn total_requests(gateway: &Gateway) -> u64 {
    let url = format!(
        "http://{}/admin/usage?consumer=alice",
        gateway.admin.unwrap()
    );
    let reply = get(&url, &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["total"]["requests"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_sums_over_gateways_sharing_redis() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("tollgate-test:metering:{}:{nanos}:", std::process::id());
    let upstream = Upstream::echo("echo").await;
    let a = Gateway::start(&config(&upstream.target(), &prefix)).await;
    let b = Gateway::start(&config(&upstream.target(), &prefix)).await;

    for _ in 0..3 {
        assert_eq!(get(&a.url("/api/x"), &[]).await.status, 200);
    }
    for _ in 0..4 {
        assert_eq!(get(&b.url("/api/x"), &[]).await.status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (on_a, on_b) = (total_requests(&a).await, total_requests(&b).await);
        if on_a == 7 && on_b == 7 {
            break;
        }
        assert!(
            Instant::now() < deadline && on_a <= 7 && on_b <= 7,
            "gateway a reports {on_a}, b reports {on_b}; want 7 on both"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}
