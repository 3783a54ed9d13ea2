//! After traffic, an operator reads per-plugin statistics from `GET /admin/plugins` and scrapes
//! `/metrics`: request counters, per-plugin and upstream latency histograms, plugin failure and
//! rate-limit counters all reflect what happened.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Upstream, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_stats_and_metrics_reflect_traffic() {
    let upstream = Upstream::echo("u").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{target}"]

[plugins.rec]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "rec" }}

[plugins.trap]
module = "{{fixtures}}/trapper.wasm"
config = {{ trigger_header = "x-hostile" }}

[plugins.lim]
module = "{{fixtures}}/limiter.wasm"
config = {{ key = "ops-stats-limit", capacity = 2, refill_per_second = 0.001 }}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "u"
chain = ["rec", "trap"]

[[routes]]
name = "limited"
path_prefix = "/limited"
upstream = "u"
chain = ["lim"]
"#,
        target = upstream.target()
    ))
    .await;
    let admin = gateway.admin.unwrap();

    for _ in 0..5 {
        assert_eq!(get(&gateway.url("/api/ok"), &[]).await.status, 200);
    }
    for _ in 0..3 {
        let reply = get(&gateway.url("/api/bad"), &[("x-hostile", "1")]).await;
        assert_eq!(reply.status, 500, "{reply:?}");
    }
    let mut limited = 0;
    for _ in 0..4 {
        if get(&gateway.url("/limited"), &[]).await.status == 429 {
            limited += 1;
        }
    }
    assert_eq!(limited, 2);

    // /admin/plugins
    let reply = get(&format!("http://{admin}/admin/plugins"), &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    let plugin = |name: &str| {
        body["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {body}"))
            .clone()
    };
    let trap = plugin("trap");
    assert_eq!(trap["calls"], 8, "{trap}");
    assert_eq!(trap["traps"], 3, "{trap}");
    assert_eq!(trap["errors"], 3, "{trap}");
    assert_eq!(trap["timeouts"], 0, "{trap}");
    let rec = plugin("rec");
    // Request phase for all 8; response phase for the 5 that reached the upstream.
    assert_eq!(rec["calls"], 13, "{rec}");
    assert_eq!(rec["errors"], 0, "{rec}");
    let (p50, p99) = (
        rec["call_ms"]["p50"].as_f64().unwrap(),
        rec["call_ms"]["p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p99 >= p50, "{rec}");
    let lim = plugin("lim");
    assert_eq!(lim["responses"], 2, "{lim}");

    // /metrics
    let metrics = get(&format!("http://{admin}/metrics"), &[]).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let line = |prefix: &str, labels: &[&str]| {
        text.lines()
            .find(|l| l.starts_with(prefix) && labels.iter().all(|x| l.contains(x)))
            .unwrap_or_else(|| panic!("no {prefix} {labels:?} in\n{text}"))
            .to_owned()
    };
    let value = |l: String| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    assert_eq!(
        value(line(
            "tollgate_requests_total{",
            &["route=\"api\"", "method=\"GET\"", "status_class=\"2xx\""]
        )),
        5.0
    );
    assert_eq!(
        value(line(
            "tollgate_requests_total{",
            &["route=\"api\"", "status_class=\"5xx\""]
        )),
        3.0
    );
    assert_eq!(
        value(line(
            "tollgate_plugin_call_seconds_count{",
            &["plugin=\"rec\"", "phase=\"request\""]
        )),
        8.0
    );
    line(
        "tollgate_plugin_call_seconds_bucket{",
        &["plugin=\"rec\"", "phase=\"response\"", "le=\"+Inf\""],
    );
    assert_eq!(
        value(line(
            "tollgate_upstream_duration_seconds_count{",
            &["route=\"api\"", "upstream=\"u\""]
        )),
        5.0
    );
    assert_eq!(
        value(line(
            "tollgate_request_duration_seconds_count{",
            &["route=\"api\""]
        )),
        8.0
    );
    assert_eq!(
        value(line(
            "tollgate_plugin_failures_total{",
            &["plugin=\"trap\"", "kind=\"trap\""]
        )),
        3.0
    );
    assert_eq!(
        value(line(
            "tollgate_rate_limited_total{",
            &["plugin=\"lim\"", "route=\"limited\""]
        )),
        2.0
    );
    gateway.shutdown().await;
}
