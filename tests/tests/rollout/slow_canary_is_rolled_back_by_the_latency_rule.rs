//! A canary that spins 5 ms per call is taken out by the p99 rule; a healthy canary under the
//! same rules serves 10,000 requests and stays in.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tollgate_tests::{Gateway, Upstream, client, send};

use crate::rollout_support::{admin_plugin, config};

fn latency_config(target: &str, stable: &str, canary: &str) -> String {
    config(
        "",
        target,
        &format!(
            r#"
[plugins.slow]
module = "{{fixtures}}/{stable}"
[plugins.slow.canary]
module = "{{fixtures}}/{canary}"
percent = 20
split = "request"
[plugins.slow.canary.rollback]
max_error_rate_points = 2
max_p99_ratio = 3
min_requests = 50
window_ms = 60000

[[routes]]
name = "r"
path_prefix = "/"
upstream = "up"
chain = ["slow"]
"#
        ),
    )
}

#[tokio::test]
async fn canary_spinning_5_ms_is_rolled_back_by_the_p99_rule() {
    let upstream = Upstream::echo("up").await;
    let config = latency_config(&upstream.target(), "looper.wasm", "looper.wasm")
        .replace(
            "[plugins.slow.canary]",
            "[plugins.slow.config]\ntrigger_header = \"x-never\"\n[plugins.slow.canary]",
        )
        .replace(
            "[plugins.slow.canary.rollback]",
            "[plugins.slow.canary.config]\nspin_ms = 5\n[plugins.slow.canary.rollback]",
        );
    let gateway = Gateway::start(&config).await;
    let admin = gateway.admin.unwrap();
    let client = client();
    let started = Instant::now();
    let mut sent = 0;
    while sent < 3000 {
        let reply = send(
            &client,
            http::Method::GET,
            &gateway.url("/x"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, 200);
        sent += 1;
        if sent % 50 == 0 && admin_plugin(admin, "slow").await["canary"]["status"] == "rolled_back"
        {
            break;
        }
    }
    let entry = admin_plugin(admin, "slow").await;
    assert_eq!(entry["canary"]["status"], "rolled_back", "{entry}");
    let reason = entry["canary"]["reason"].as_str().unwrap();
    assert!(reason.contains("p99"), "{reason}");
    println!(
        "5 ms canary rolled back by the p99 rule after {sent} requests ({} ms): {reason}",
        started.elapsed().as_millis()
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn healthy_canary_stays_in_over_10000_requests() {
    let upstream = Upstream::echo("up").await;
    let config = latency_config(&upstream.target(), "trapper.wasm", "trapper.wasm")
        .replace(
            "[plugins.slow.canary]",
            "[plugins.slow.config]\ntrigger_header = \"x-never\"\ntag = \"stable\"\n[plugins.slow.canary]",
        )
        .replace(
            "[plugins.slow.canary.rollback]",
            "[plugins.slow.canary.config]\ntrigger_header = \"x-never\"\ntag = \"canary\"\n[plugins.slow.canary.rollback]",
        );
    let gateway = Arc::new(Gateway::start(&config).await);
    let admin = gateway.admin.unwrap();
    // Eight clients at once, 1,250 requests each.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let gateway = gateway.clone();
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut canary = 0;
            for _ in 0..1250 {
                let reply = send(
                    &client,
                    http::Method::GET,
                    &gateway.url("/x"),
                    &[],
                    Bytes::new(),
                )
                .await;
                assert_eq!(reply.status, 200);
                canary += usize::from(reply.json()["headers"]["x-trapper"][0] == "canary");
            }
            canary
        }));
    }
    let mut canary = 0;
    for t in tasks {
        canary += t.await.unwrap();
    }
    let entry = admin_plugin(admin, "slow").await;
    assert_eq!(entry["canary"]["status"], "active", "{entry}");
    println!(
        "healthy canary: 10,000 requests, {canary} on the canary ({:.1} %), still active; window {}",
        canary as f64 / 100.0,
        entry["canary"]["window"]
    );
    assert!((1700..=2300).contains(&canary), "{canary}");
}
