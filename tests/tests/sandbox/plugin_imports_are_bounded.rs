//! Every import a plugin can grow is bounded, with an error (or a failed call) for the plugin and
//! a counter: per-request context, log lines, metric series (in their own namespace), state keys
//! and values, and fetches per request phase. What one import call copies out of a plugin is
//! bounded too, also when the plugin passes one buffer many times over.

use http::Method;
use tollgate_tests::{Upstream, client, send};

use crate::sandbox_support::{gateway, limit_hits, metrics, value};

const PLUGINS: &str = r#"
[limits]
plugin_context_keys = 16
plugin_log_bytes = 1024
plugin_metric_series = 10
plugin_state_key_bytes = 256
plugin_state_value_bytes = 4096
plugin_fetch_requests = 5

[plugins.ctx]
module = "{fixtures}/abuser.wasm"
config = { mode = "context", count = 1000, bytes = 1000 }

[plugins.logger]
module = "{fixtures}/abuser.wasm"
config = { mode = "log", bytes = 1000000, report = true }

[plugins.metric-flood]
module = "{fixtures}/abuser.wasm"
config = { mode = "metrics", count = 100, report = true }

[plugins.big-key]
module = "{fixtures}/abuser.wasm"
config = { mode = "state", bytes = 100000, report = true }

[plugins.fetch-flood]
module = "{fixtures}/abuser.wasm"
fetch = ["up"]
config = { mode = "fetch", count = 20, upstream = "up", report = true }

[plugins.aliased]
module = "{fixtures}/abuser.wasm"
config = { mode = "aliased-list", count = 4096, bytes = 1048576, report = true }

[[routes]]
name = "aliased"
path_prefix = "/aliased"
upstream = "up"
chain = ["aliased"]

[[routes]]
name = "ctx"
path_prefix = "/ctx"
upstream = "up"
chain = ["ctx"]

[[routes]]
name = "log"
path_prefix = "/log"
upstream = "up"
chain = ["logger"]

[[routes]]
name = "metrics"
path_prefix = "/metrics-flood"
upstream = "up"
chain = ["metric-flood"]

[[routes]]
name = "state"
path_prefix = "/state"
upstream = "up"
chain = ["big-key"]

[[routes]]
name = "fetch"
path_prefix = "/fetch"
upstream = "up"
chain = ["fetch-flood"]
"#;

#[tokio::test]
async fn imports_refuse_past_their_caps() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(&upstream, PLUGINS).await;
    let client = client();
    let call = |path: &str| {
        let url = gateway.url(path);
        let client = client.clone();
        async move { send(&client, Method::GET, &url, &[], "").await }
    };

    // Context: 1,000 keys of 1 KB fail the call, 500 naming the plugin.
    let reply = call("/ctx").await;
    assert_eq!(reply.status, 500);
    let body = reply.json();
    assert_eq!(body["plugin"], "ctx");
    assert!(
        body["message"].as_str().unwrap().contains("context limit"),
        "{body}"
    );
    assert!(limit_hits(&gateway, "ctx", "context").await >= 1.0);

    // Log: a 1 MB line is cut and counted; the request goes on.
    assert_eq!(call("/log").await.status, 200);
    assert!(limit_hits(&gateway, "logger", "log").await >= 1.0);

    // Metrics: 100 series against a cap of 10; the plugin's `calls_total` lands in its own
    // namespace and does not add to the gateway's `tollgate_plugin_calls_total`.
    assert_eq!(call("/metrics-flood").await.status, 200);
    let text = metrics(&gateway).await;
    let series = text
        .lines()
        .filter(|l| {
            l.starts_with("tollgate_custom_abuse{") && l.contains("plugin=\"metric-flood\"")
        })
        .count();
    assert!((1..=10).contains(&series), "{series} series");
    assert_eq!(
        value(
            &text,
            "tollgate_plugin_calls_total",
            &[("plugin", "metric-flood")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "tollgate_custom_calls_total",
            &[("plugin", "metric-flood")]
        ),
        1000.0
    );
    assert!(limit_hits(&gateway, "metric-flood", "metric_series").await >= 90.0);

    // State: a 100 KB key is refused with the reason.
    let body = call("/state").await.json();
    assert_eq!(body["errors"], 1, "{body}");
    assert!(
        body["first_error"]
            .as_str()
            .unwrap()
            .contains("state key too long"),
        "{body}"
    );
    assert!(limit_hits(&gateway, "big-key", "state_key").await >= 1.0);

    // Fetch: 20 calls in one request phase, 5 go out.
    let body = call("/fetch").await.json();
    assert_eq!(body["ok"], 5, "{body}");
    assert_eq!(body["errors"], 15, "{body}");
    assert!(
        body["first_error"]
            .as_str()
            .unwrap()
            .contains("fetch limit"),
        "{body}"
    );
    assert!(limit_hits(&gateway, "fetch-flood", "fetch").await >= 1.0);

    // One 1 MiB key passed 4,096 times in one `incr-many`: lifted as it stands, 4 GiB of host
    // memory. The call copies no more than the plugin's memory limit, then fails, naming the
    // plugin; the gateway goes on serving.
    for _ in 0..3 {
        let reply = call("/aliased").await;
        assert_eq!(reply.status, 500);
        let body = reply.json();
        assert_eq!(body["plugin"], "aliased", "{body}");
        assert_eq!(body["kind"], "trap", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("too much data"),
            "{body}"
        );
    }
    assert_eq!(call("/log").await.status, 200);
}
