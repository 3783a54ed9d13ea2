//! An operator writes the access log to a file: one JSON line per request with the route,
//! consumer, status, sizes, durations, client address (after the trusted-proxy rule), method,
//! path, query, user agent, request id (the one the client got back) and upstream. A plugin that
//! sets `access_log.<field>` in the request context replaces that field in the line.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::Method;
use tollgate_tests::{Gateway, Upstream, client, get, send};

fn read_lines(path: &std::path::Path, want: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if lines.len() >= want {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {want} lines:\n{text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_carry_the_request_and_plugin_overrides() {
    let upstream = Upstream::echo("u").await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let gateway = Gateway::start_in(
        dir,
        &format!(
            r#"
[gateway]
cache_dir = "{{cache}}"
watch = false
trusted_proxies = ["127.0.0.1"]

[[listeners]]
addr = "127.0.0.1:0"

[access_log]
destination = "file"
path = "access.log"

[upstreams.u]
targets = ["{target}"]

[plugins.who]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "who", set_context = {{ consumer = "alice" }} }}

[plugins.scrub]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "scrub", set_context = {{ "access_log.path" = "/users/:id", "access_log.query" = "token=***", "access_log.client_ip" = "0.0.0.0", "access_log.consumer" = "c-1", "access_log.user_agent" = "ua", "access_log.referer" = "-" }} }}

[[routes]]
name = "plain"
path_prefix = "/plain"
upstream = "u"
chain = ["who"]

[[routes]]
name = "scrubbed"
path_prefix = "/users"
upstream = "u"
chain = ["who", "scrub"]
"#,
            target = upstream.target()
        ),
    )
    .await;

    // 1. Through a trusted proxy, with a body, no request id of its own.
    let plain = send(
        &client(),
        Method::POST,
        &gateway.url("/plain/items?x=1&y=2"),
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("user-agent", "ops-test/1.0"),
            ("referer", "https://example.com/from"),
        ],
        "hello",
    )
    .await;
    assert_eq!(plain.status, 200);
    let plain_id = plain.header("x-request-id").unwrap().to_owned();
    // 2. Scrubbed by a plugin, with the client's own request id.
    let scrubbed = get(
        &gateway.url("/users/alice?token=abc"),
        &[("x-request-id", "req-scrub-1"), ("user-agent", "secret-ua")],
    )
    .await;
    assert_eq!(scrubbed.status, 200);
    // 3. No route.
    let missing = get(&gateway.url("/nowhere"), &[]).await;
    assert_eq!(missing.status, 404);
    let missing_id = missing.header("x-request-id").unwrap().to_owned();

    let lines = read_lines(&log_path, 3);
    let by_id = |id: &str| {
        lines
            .iter()
            .find(|l| l["request_id"] == id)
            .unwrap_or_else(|| panic!("no line for {id}: {lines:?}"))
            .clone()
    };

    let p = by_id(&plain_id);
    assert!(
        time::OffsetDateTime::parse(
            p["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "{p}"
    );
    assert_eq!(p["route"], "plain");
    assert_eq!(p["consumer"], "alice");
    assert_eq!(p["status"], 200);
    assert_eq!(p["method"], "POST");
    assert_eq!(p["path"], "/plain/items");
    assert_eq!(p["query"], "x=1&y=2");
    assert_eq!(p["client_ip"], "203.0.113.7");
    assert_eq!(p["user_agent"], "ops-test/1.0");
    assert_eq!(p["referer"], "https://example.com/from");
    assert_eq!(p["request_bytes"], 5);
    assert_eq!(p["response_bytes"], plain.body.len() as u64);
    assert_eq!(p["upstream"], "u");
    assert_eq!(p["upstream_target"], upstream.target().as_str());
    let (total, up) = (
        p["duration_ms"].as_f64().unwrap(),
        p["upstream_ms"].as_f64().unwrap(),
    );
    assert!(up > 0.0 && total >= up, "{p}");
    assert_eq!(p["trace_id"].as_str().unwrap().len(), 32);

    let s = by_id("req-scrub-1");
    assert_eq!(s["route"], "scrubbed");
    assert_eq!(s["path"], "/users/:id");
    assert_eq!(s["query"], "token=***");
    assert_eq!(s["client_ip"], "0.0.0.0");
    assert_eq!(s["consumer"], "c-1");
    assert_eq!(s["user_agent"], "ua");
    assert_eq!(s["referer"], "-");
    assert_eq!(s["status"], 200);
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !text.contains("token=abc") && !text.contains("secret-ua"),
        "{text}"
    );

    let m = by_id(&missing_id);
    assert_eq!(m["status"], 404);
    assert_eq!(m["route"], serde_json::Value::Null);
    assert_eq!(m["upstream"], serde_json::Value::Null);
    assert_eq!(m["path"], "/nowhere");
    gateway.shutdown().await;
}
