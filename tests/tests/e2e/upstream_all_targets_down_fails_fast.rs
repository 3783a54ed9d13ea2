//! When no target of an upstream can take traffic (every one ejected or failing its checks),
//! the gateway answers at once with 503 `no_healthy_upstream` instead of trying targets it knows
//! are down; when a check passes again, traffic flows again.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, get};
use upstream_support::{Target, config, eventually, spread};

#[tokio::test(flavor = "multi_thread")]
async fn no_healthy_target_is_503_until_one_recovers() {
    let only = Target::start("only").await;
    let gateway = Gateway::start(&config(&format!(
        r#"targets = ["{}"]
[upstreams.app.health_check]
interval_ms = 100
timeout_ms = 100
unhealthy_threshold = 1
healthy_threshold = 1"#,
        only.target()
    )))
    .await;
    assert_eq!(spread(&gateway, "/x", 2).await, ["only", "only"]);

    only.set_health(503);
    eventually(
        Duration::from_secs(5),
        "503 no_healthy_upstream",
        || async { get(&gateway.url("/x"), &[]).await.status == 503 },
    )
    .await;
    let started = Instant::now();
    let reply = get(&gateway.url("/x"), &[]).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(reply.status, 503);
    let body = reply.json();
    assert_eq!(body["error"], "no_healthy_upstream");
    assert_eq!(body["upstream"], "app");
    assert_eq!(reply.header("content-type"), Some("application/json"));

    only.set_health(200);
    eventually(Duration::from_secs(5), "served again", || async {
        get(&gateway.url("/x"), &[]).await.status == 200
    })
    .await;
    gateway.shutdown().await;
}
