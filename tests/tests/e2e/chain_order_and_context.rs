//! A request passes through a chain of Wasm plugins in order, the response in reverse, and
//! context set by one plugin is read by the next.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Upstream, get};

fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.a]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "a", set_context = {{ consumer = "alice" }} }}

[plugins.b]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "b", context_to_header = {{ consumer = "x-consumer" }} }}

[plugins.c]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "c" }}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = ["a", "b", "c"]
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn request_runs_in_chain_order_and_response_in_reverse() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let reply = get(&gateway.url("/api/orders?id=7"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["path"], "/api/orders");
    assert_eq!(echo["query"], "id=7");
    assert_eq!(
        echo["headers"]["x-order"][0], "a,b,c",
        "request phase order"
    );
    assert_eq!(
        reply.header("x-order-response"),
        Some("c,b,a"),
        "response phase order"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn context_set_by_one_plugin_is_read_by_the_next() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let reply = get(&gateway.url("/api/me"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["x-consumer"][0], "alice");
    gateway.shutdown().await;
}
