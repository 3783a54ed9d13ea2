//! An operator configures active health checks: a target whose `/health` starts failing stops
//! receiving traffic once `unhealthy_threshold` checks failed, and gets traffic again once
//! `healthy_threshold` checks passed after it recovered.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use std::time::Duration;

use tollgate_tests::Gateway;
use upstream_support::{Target, config, eventually, spread, upstreams};

#[tokio::test(flavor = "multi_thread")]
async fn failing_health_check_takes_a_target_out_and_recovery_brings_it_back() {
    let a = Target::start("a").await;
    let b = Target::start("b").await;
    let gateway = Gateway::start(&config(&format!(
        r#"targets = ["{}", "{}"]
[upstreams.app.health_check]
path = "/health"
interval_ms = 100
timeout_ms = 100
healthy_threshold = 2
unhealthy_threshold = 2
expected_statuses = [200]"#,
        a.target(),
        b.target()
    )))
    .await;

    // Both serve while both pass.
    let served = spread(&gateway, "/work", 10).await;
    assert!(
        served.iter().any(|s| s == "a") && served.iter().any(|s| s == "b"),
        "{served:?}"
    );

    // `a` fails its checks: two failures at 100 ms intervals take it out. The margin is for a
    // loaded machine; the admin API says when.
    a.set_health(503);
    let took = eventually(Duration::from_secs(5), "a marked unhealthy", || async {
        upstreams(&gateway).await["upstreams"]["app"]["targets"][0]["healthy"] == false
    })
    .await;
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let served = spread(&gateway, "/work", 20).await;
    assert!(served.iter().all(|s| s == "b"), "{served:?}");
    let report = upstreams(&gateway).await;
    let a_report = &report["upstreams"]["app"]["targets"][0];
    assert_eq!(a_report["last_check"]["status"], 503);
    assert_eq!(a_report["last_check"]["ok"], false);

    // `a` recovers: two passing checks bring it back.
    a.set_health(200);
    eventually(Duration::from_secs(5), "a healthy again", || async {
        upstreams(&gateway).await["upstreams"]["app"]["targets"][0]["healthy"] == true
    })
    .await;
    let served = spread(&gateway, "/work", 10).await;
    assert_eq!(served.iter().filter(|s| *s == "a").count(), 5, "{served:?}");
    assert_eq!(served.iter().filter(|s| *s == "b").count(), 5, "{served:?}");
    gateway.shutdown().await;
}
