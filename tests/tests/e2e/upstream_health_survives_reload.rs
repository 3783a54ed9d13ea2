//! Hot reload keeps what the gateway knows about upstream health: a target marked unhealthy
//! stays out of rotation right after a reload that left its upstream alone (no flap back to
//! healthy), and the health checks of an upstream removed by a reload stop.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use std::time::Duration;

use tollgate_tests::{Gateway, admin_reload};
use upstream_support::{Target, eventually, spread, upstreams};

fn config(a: &str, b: &str, with_checked: bool, extra_route: bool) -> String {
    let checked = if with_checked {
        format!(
            r#"
[upstreams.checked]
targets = ["{a}", "{b}"]
[upstreams.checked.health_check]
interval_ms = 100
timeout_ms = 100
unhealthy_threshold = 3
healthy_threshold = 3

[[routes]]
name = "checked"
path_prefix = "/checked"
upstream = "checked"
"#
        )
    } else {
        String::new()
    };
    let extra = if extra_route {
        "\n[[routes]]\nname = \"extra\"\npath_prefix = \"/extra\"\nupstream = \"plain\"\n"
    } else {
        ""
    };
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.plain]
targets = ["{b}"]

[[routes]]
name = "plain"
path_prefix = "/plain"
upstream = "plain"
{checked}{extra}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_keeps_health_and_stops_checks_of_removed_upstreams() {
    let a = Target::start("a").await;
    let b = Target::start("b").await;
    a.set_health(503);
    let gateway = Gateway::start(&config(&a.target(), &b.target(), true, false)).await;
    eventually(Duration::from_secs(5), "a unhealthy", || async {
        upstreams(&gateway).await["upstreams"]["checked"]["targets"][0]["healthy"] == false
    })
    .await;

    // A reload that changes another part of the config: `a` stays out, at once (fresh state
    // would start healthy and need three failed checks, 300 ms, to take it out again).
    gateway.write_config(&config(&a.target(), &b.target(), true, true));
    assert_eq!(admin_reload(&gateway).await.status, 200);
    let report = upstreams(&gateway).await;
    assert_eq!(
        report["upstreams"]["checked"]["targets"][0]["healthy"], false,
        "{report}"
    );
    let served = spread(&gateway, "/checked/x", 6).await;
    assert!(served.iter().all(|s| s == "b"), "{served:?}");
    // It comes back through its checks once it passes them.
    a.set_health(200);
    eventually(Duration::from_secs(5), "a healthy again", || async {
        upstreams(&gateway).await["upstreams"]["checked"]["targets"][0]["healthy"] == true
    })
    .await;

    // A reload that removes the upstream stops its checks.
    gateway.write_config(&config(&a.target(), &b.target(), false, true));
    assert_eq!(admin_reload(&gateway).await.status, 200);
    assert!(upstreams(&gateway).await["upstreams"]["checked"].is_null());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = a.checks();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        a.checks(),
        before,
        "checks still running after the upstream was removed"
    );
    assert!(before > 0);
    gateway.shutdown().await;
}
