//! An operator asks the admin API how upstreams are doing: `GET /admin/upstreams` lists every
//! upstream with its balancing, checks and retry counters, and per target whether it is healthy,
//! requests in flight, consecutive failures, when an ejection ends and the last check; `/metrics`
//! has the same health as `tollgate_upstream_healthy` and counts ejections.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use std::time::Duration;

use tollgate_tests::{Gateway, dead_port, get};
use upstream_support::{Target, eventually, metrics, upstreams};

#[tokio::test(flavor = "multi_thread")]
async fn admin_lists_targets_with_health_load_and_ejection() {
    tollgate::admin::install_metrics_recorder();
    let good = Target::start("good").await;
    let sick = Target::start("sick").await;
    sick.set_health(500);
    let dead = dead_port().await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{good}", "{sick}"]
balance = "least-connections"
[upstreams.app.health_check]
path = "/health"
interval_ms = 100
timeout_ms = 100
unhealthy_threshold = 1

[upstreams.legacy]
targets = ["{dead}"]
[upstreams.legacy.passive]
max_failures = 2
ejection_ms = 60000

[[routes]]
name = "app"
path_prefix = "/app"
upstream = "app"

[[routes]]
name = "legacy"
path_prefix = "/legacy"
upstream = "legacy"
"#,
        good = good.target(),
        sick = sick.target(),
    ))
    .await;

    eventually(Duration::from_secs(5), "sick marked unhealthy", || async {
        upstreams(&gateway).await["upstreams"]["app"]["targets"][1]["healthy"] == false
    })
    .await;
    // Two failed requests eject the legacy target.
    for _ in 0..2 {
        assert_eq!(get(&gateway.url("/legacy/x"), &[]).await.status, 502);
    }

    let report = upstreams(&gateway).await;
    let app = &report["upstreams"]["app"];
    assert_eq!(app["balance"], "least-connections");
    assert_eq!(app["health_check"]["path"], "/health");
    assert_eq!(app["health_check"]["interval_ms"], 100);
    assert_eq!(app["available_targets"], 1);
    let good_report = &app["targets"][0];
    assert_eq!(good_report["target"], good.target());
    assert_eq!(good_report["healthy"], true);
    assert_eq!(good_report["in_flight"], 0);
    assert_eq!(good_report["consecutive_failures"], 0);
    assert!(good_report["ejected_until"].is_null());
    assert_eq!(good_report["last_check"]["ok"], true);
    assert_eq!(good_report["last_check"]["status"], 200);
    assert!(
        good_report["last_check"]["at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let sick_report = &app["targets"][1];
    assert_eq!(sick_report["healthy"], false);
    assert_eq!(sick_report["available"], false);
    assert_eq!(sick_report["last_check"]["status"], 500);

    let legacy = &report["upstreams"]["legacy"];
    assert!(legacy["health_check"].is_null());
    assert_eq!(legacy["available_targets"], 0);
    let dead_report = &legacy["targets"][0];
    assert_eq!(dead_report["healthy"], true);
    assert_eq!(dead_report["available"], false);
    assert_eq!(dead_report["ejections"], 1);
    assert!(dead_report["last_check"].is_null());
    let until = dead_report["ejected_until"].as_str().unwrap();
    assert!(until.len() >= 20 && until.ends_with('Z'), "{until}");

    let text = metrics(&gateway).await;
    for line in [
        format!(
            "tollgate_upstream_healthy{{upstream=\"app\",target=\"{}\"}} 1",
            good.target()
        ),
        format!(
            "tollgate_upstream_healthy{{upstream=\"app\",target=\"{}\"}} 0",
            sick.target()
        ),
        format!("tollgate_upstream_healthy{{upstream=\"legacy\",target=\"{dead}\"}} 0"),
        format!("tollgate_upstream_ejections_total{{upstream=\"legacy\",target=\"{dead}\"}} 1"),
    ] {
        assert!(text.contains(&line), "missing {line} in:\n{text}");
    }
    gateway.shutdown().await;
}
