//! A plugin puts headers on the response from its request phase, through the context key
//! `response.header.<name>`: on the upstream's response and on a plugin's reply, before the
//! response phase (whose plugins can still remove them), with the checks `set-header` has.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Upstream, dead_port, get};

/// `setter` asks for headers through the context; `refuser` answers 403 itself when the request
/// has `x-refuse`; `strip` removes one of the headers in its response phase; `c` records the
/// response phase's order.
fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.setter]
module = "{{fixtures}}/recorder.wasm"
[plugins.setter.config]
name = "setter"
[plugins.setter.config.set_context]
"response.header.x-quota-left" = "41"
"response.header.content-type" = "text/plain; from=context"
"response.header.x-removed-later" = "1"
"response.header.x-bad-value" = "a\u0001b"
"response.header.bad name" = "1"
"response.header.content-length" = "1"
"response.header.connection" = "close"
"not.a.response.header" = "1"

[plugins.refuser]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "refuser", respond_status = 403, respond_body = "no", respond_if_header = "x-refuse" }}

[plugins.strip]
module = "headers"
config = {{ response = {{ remove = ["x-removed-later"] }} }}

[plugins.c]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "c" }}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = ["strip", "setter", "c", "refuser"]
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn context_headers_reach_the_client_on_the_upstreams_response() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let reply = get(&gateway.url("/api/orders"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("x-quota-left"), Some("41"));
    // Replaces the upstream's value, as `set-header` would.
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; from=context")
    );
    // The response phase ran after they were set: `strip` removed one, the recorders wrote theirs.
    assert_eq!(reply.header("x-removed-later"), None);
    assert_eq!(reply.header("x-order-response"), Some("refuser,c,setter"));
    // Bad names and values are skipped; the body keeps its own length; no connection header.
    assert_eq!(reply.header("x-bad-value"), None);
    assert_eq!(reply.header("not.a.response.header"), None);
    assert_eq!(reply.header("connection"), None);
    let echo: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(echo["path"], "/api/orders", "the whole body arrived");
    // The upstream never sees them: they are response headers, not request headers.
    assert!(echo["headers"].get("x-quota-left").is_none(), "{echo}");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn context_headers_reach_the_client_on_a_plugins_reply() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let reply = get(&gateway.url("/api/orders"), &[("x-refuse", "1")]).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert_eq!(reply.header("x-responded-by"), Some("refuser"));
    assert_eq!(reply.header("x-quota-left"), Some("41"));
    assert_eq!(&reply.body[..], b"no");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn context_headers_reach_the_client_on_the_gateways_answer_to_a_failed_upstream() {
    let dead = dead_port().await;
    let gateway = Gateway::start(&config(&dead.to_string())).await;

    let reply = get(&gateway.url("/api/orders"), &[]).await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert_eq!(reply.header("x-quota-left"), Some("41"));
    assert_eq!(reply.header("x-removed-later"), None);
    gateway.shutdown().await;
}
