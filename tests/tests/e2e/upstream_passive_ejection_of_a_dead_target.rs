//! One target of an upstream is down (nothing listens on its port) and no health checks are
//! configured: every client GET still succeeds, because a request that could not connect is
//! retried on the other target, and after `max_failures` failed attempts the dead target is
//! ejected, so it costs no more retries.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use tollgate_tests::{Gateway, dead_port};
use upstream_support::{Target, config, spread, upstreams};

#[tokio::test(flavor = "multi_thread")]
async fn dead_target_is_ejected_and_no_client_get_fails() {
    let alive = Target::start("alive").await;
    let dead = dead_port().await;
    let gateway = Gateway::start(&config(&format!(
        r#"targets = ["{}", "{dead}"]
retries = 1
[upstreams.app.passive]
max_failures = 3
ejection_ms = 60000"#,
        alive.target()
    )))
    .await;

    let served = spread(&gateway, "/orders", 40).await;
    assert!(served.iter().all(|s| s == "alive"), "{served:?}");

    let report = upstreams(&gateway).await;
    let app = &report["upstreams"]["app"];
    let dead_report = &app["targets"][1];
    assert_eq!(dead_report["target"], dead.to_string());
    assert_eq!(dead_report["available"], false);
    assert_eq!(dead_report["ejections"], 1);
    assert!(dead_report["ejected_until"].is_string(), "{dead_report}");
    // Round-robin sent it every other request until three attempts failed; each was retried.
    assert_eq!(app["retries"]["attempted"], 3, "{app}");
    assert_eq!(app["targets"][0]["available"], true);
    gateway.shutdown().await;
}
