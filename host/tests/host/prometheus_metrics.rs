//! An operator scrapes `/metrics` on the admin listener: request counters by route and status
//! class, plugin calls, and the meter plugin's usage counters per consumer.

#![allow(clippy::unwrap_used)]

use crate::binary_support;

use std::time::{Duration, Instant};

use binary_support::{build_plugins, get, log_field, spawn_gateway, upstream, wait_for_line};

#[test]
fn metrics_show_requests_plugins_and_usage() {
    let plugin_dir = build_plugins();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[gateway]
plugin_dir = "{}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{}"]

[plugins.meter]
module = "meter"

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "u"
chain = ["meter"]
"#,
            plugin_dir.display(),
            upstream()
        ),
    )
    .unwrap();

    let gateway = spawn_gateway(&path);
    let admin = wait_for_line(&gateway.log, "admin API listening")
        .and_then(|line| log_field(&line, "addr"))
        .expect("admin address logged");
    for _ in 0..3 {
        assert!(get(gateway.addr, "/api/x").starts_with("http/1.1 200"));
    }
    assert!(get(gateway.addr, "/nothing-here").starts_with("http/1.1 404"));

    // The meter records in the log phase, after the responses: poll until it caught up.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = get(admin, "/metrics");
        let usage = metrics.lines().find(|l| {
            l.starts_with("tollgate_custom_usage_requests{")
                && l.contains("consumer=\"anonymous\"")
                && l.contains("route=\"api\"")
                && l.contains("status_class=\"2xx\"")
        });
        if usage.is_some_and(|l| l.ends_with(" 3")) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "usage counter never reached 3:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tollgate_requests_total{")
                && l.contains("route=\"api\"")
                && l.contains("status_class=\"2xx\"")
                && l.ends_with(" 3")),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(
            |l| l.starts_with("tollgate_plugin_calls_total{") && l.contains("plugin=\"meter\"")
        ),
        "{metrics}"
    );
}
