//! The upstream gets the client's headers and the plugins' on every attempt. When no plugin can
//! read the request after it went upstream and no retry can follow (a POST), the gateway hands
//! the headers over instead of copying them; a retried GET must still carry them on its second
//! attempt, after the first target refused the connection.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use bytes::Bytes;
use http::{Method, StatusCode};
use tollgate_tests::{Gateway, Reply, client, dead_port, send};
use upstream_support::{Target, upstreams};

fn config(alive: &str, dead: &str) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{alive}", "{dead}"]
retries = 1
retry_budget_min_per_sec = 100
[upstreams.app.passive]
max_failures = 0

[plugins.tag]
module = "headers"
[plugins.tag.config]
request.set = {{ "x-tagged" = "by-plugin" }}

[[routes]]
name = "app"
path_prefix = "/"
upstream = "app"
chain = ["tag"]
"#
    )
}

/// The single value of `name` the upstream saw, from the echo.
fn seen(reply: &Reply, name: &str) -> serde_json::Value {
    reply.json()["headers"][name].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attempt_carries_the_client_and_plugin_headers() {
    let alive = Target::start("alive").await;
    let dead = dead_port().await;
    let gateway = Gateway::start(&config(&alive.target(), &dead.to_string())).await;
    let client = client();
    let headers = [("x-client", "abc"), ("x-trace-me", "1")];

    // Round-robin over a live and a dead target: half of the GETs reach the live one only on
    // their second attempt.
    for i in 0..8 {
        let reply = send(
            &client,
            Method::GET,
            &gateway.url(&format!("/get/{i}")),
            &headers,
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "GET {i}: {:?}", reply.body);
        assert_eq!(seen(&reply, "x-client"), serde_json::json!(["abc"]));
        assert_eq!(seen(&reply, "x-trace-me"), serde_json::json!(["1"]));
        assert_eq!(seen(&reply, "x-tagged"), serde_json::json!(["by-plugin"]));
        assert_eq!(reply.json()["path"], format!("/get/{i}"));
    }
    let report = upstreams(&gateway).await;
    let retried = report["upstreams"]["app"]["retries"]["attempted"]
        .as_u64()
        .unwrap();
    assert!(retried >= 1, "no GET was retried: {report}");

    // POSTs are not retried: those that reach the live target carry every header and the body.
    let mut served = 0;
    for i in 0..6 {
        let reply = send(
            &client,
            Method::POST,
            &gateway.url("/post"),
            &headers,
            Bytes::from(format!("body {i}")),
        )
        .await;
        if reply.status == StatusCode::BAD_GATEWAY {
            assert_eq!(reply.json()["error"], "upstream_unavailable");
            continue;
        }
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(seen(&reply, "x-client"), serde_json::json!(["abc"]));
        assert_eq!(seen(&reply, "x-tagged"), serde_json::json!(["by-plugin"]));
        assert_eq!(reply.json()["body"], format!("body {i}"));
        served += 1;
    }
    assert!(served >= 1, "no POST reached the live target");
    gateway.shutdown().await;
}

/// A plugin with a response phase reads the request as the request phase left it, after the
/// request went upstream: the gateway copied the headers for the upstream, it did not hand them
/// over.
#[tokio::test(flavor = "multi_thread")]
async fn the_response_phase_still_reads_the_request_headers() {
    let alive = Target::start("alive").await;
    let config = format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{}"]

[plugins.tag]
module = "headers"
[plugins.tag.config]
request.set = {{ "x-tagged" = "by-plugin" }}

[plugins.reader]
module = "{{fixtures}}/recorder.wasm"
[plugins.reader.config]
name = "reader"
request_header_in_response = "x-tagged"

[[routes]]
name = "app"
path_prefix = "/"
upstream = "app"
chain = ["reader", "tag"]
"#,
        alive.target()
    );
    let gateway = Gateway::start(&config).await;
    let reply = send(
        &client(),
        Method::POST,
        &gateway.url("/post"),
        &[("x-client", "abc")],
        Bytes::from_static(b"hello"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(seen(&reply, "x-tagged"), serde_json::json!(["by-plugin"]));
    assert_eq!(
        reply.headers.get("x-request-header").unwrap(),
        "by-plugin",
        "the response phase saw the request without its headers"
    );
    gateway.shutdown().await;
}
