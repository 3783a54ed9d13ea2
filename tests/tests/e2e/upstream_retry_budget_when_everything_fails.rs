//! When every target is down, retries could double the load on an upstream that is already
//! failing. The retry budget (here 20 % of requests, no per-second minimum) caps them: of 50
//! failing GETs only about 10 are retried, the rest fail at once with 502.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use tollgate_tests::{Gateway, dead_port};
use upstream_support::{config, metrics, spread, upstreams};

#[tokio::test(flavor = "multi_thread")]
async fn budget_stops_retries_when_all_targets_fail() {
    tollgate::admin::install_metrics_recorder();
    let (dead1, dead2) = (dead_port().await, dead_port().await);
    let gateway = Gateway::start(&config(&format!(
        r#"targets = ["{dead1}", "{dead2}"]
retries = 1
retry_budget_percent = 20
retry_budget_min_per_sec = 0
[upstreams.app.passive]
max_failures = 0"#
    )))
    .await;

    let served = spread(&gateway, "/x", 50).await;
    assert!(
        served.iter().all(|s| s == "502 \"upstream_unavailable\""),
        "{served:?}"
    );

    let report = upstreams(&gateway).await;
    let retries = &report["upstreams"]["app"]["retries"];
    let attempted = retries["attempted"].as_u64().unwrap();
    let exhausted = retries["budget_exhausted"].as_u64().unwrap();
    // Without a budget all 50 would be retried; with it, one in five requests (the window is
    // 10 s, far longer than this test).
    assert_eq!(attempted + exhausted, 50, "{retries}");
    assert_eq!(attempted, 10, "{retries}");

    let text = metrics(&gateway).await;
    assert!(
        text.contains("tollgate_upstream_retries_total{upstream=\"app\"} 10"),
        "{text}"
    );
    assert!(
        text.contains("tollgate_upstream_retry_budget_exhausted_total{upstream=\"app\"} 40"),
        "{text}"
    );
    gateway.shutdown().await;
}
