//! A plugin answers the request itself: the upstream is never called and only the plugins that
//! ran before it see the response.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate_tests::{Gateway, Upstream, echo_response, get};

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_response_skips_the_rest_of_the_chain_and_the_upstream() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let upstream = Upstream::start(Arc::new(move |req| {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { echo_response("echo", &req) })
    }))
    .await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{}"]

[plugins.first]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "first" }}

[plugins.gate]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "gate", respond_status = 403, respond_body = '{{"error":"blocked"}}', respond_if_header = "x-block" }}

[plugins.last]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "last" }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["first", "gate", "last"]
"#,
        upstream.target()
    ))
    .await;

    let blocked = get(&gateway.url("/anything"), &[("x-block", "1")]).await;
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.json()["error"], "blocked");
    assert_eq!(blocked.header("x-responded-by"), Some("gate"));
    assert_eq!(
        blocked.header("x-order-response"),
        Some("first"),
        "only the plugins before the responder run their response phase"
    );
    assert_eq!(blocked.header("content-length"), Some("19"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "upstream must not be called"
    );

    let passed = get(&gateway.url("/anything"), &[]).await;
    assert_eq!(passed.status, 200);
    assert_eq!(passed.json()["headers"]["x-order"][0], "first,gate,last");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    gateway.shutdown().await;
}
