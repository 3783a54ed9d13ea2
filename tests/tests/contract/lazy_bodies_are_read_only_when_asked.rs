//! Bodies are read when a plugin asks for them (0.2.0 `body()`), not up front: an
//! unauthenticated 10 MB upload is refused by `auth` before the gateway reads it, and a request
//! through a plugin that only reads POST bodies streams. A 0.1.0 plugin that declared the body
//! capability keeps its old behaviour (the body is buffered before the chain).

use std::time::Duration;

use crate::auth_support::key_hash;
use crate::support::{Raw, eager_upstream};
use tollgate_tests::{Gateway, client, send};

const KEY: &str = "tg_contract_5f4e3d2c1b0a99887766554433221100";

fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.eager]
targets = ["{upstream}"]

[plugins.auth]
module = "{{plugins}}/auth.wasm"
[plugins.auth.config]
methods = ["api_key"]
api_key = {{ keys = [{{ hash = "{hash}", consumer = "alice" }}] }}

[plugins.reader]
module = "{{fixtures}}/body_reader.wasm"
config = {{ methods = ["POST"] }}

[plugins.v01]
module = "{{fixtures}}/contract_v01.wasm"

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "eager"
chain = ["auth", "reader"]

[[routes]]
name = "reader"
path_prefix = "/reader"
upstream = "eager"
chain = ["reader"]

[[routes]]
name = "v01"
path_prefix = "/v01"
upstream = "eager"
chain = ["v01"]
"#,
        hash = key_hash(KEY)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_upload_is_refused_before_its_body_is_read() {
    let (upstream, _task) = eager_upstream().await;
    let gateway = Gateway::start(&config(&upstream.to_string())).await;

    // 10 MiB declared, 64 KiB sent: the 401 must come back while the client still holds the rest.
    let mut raw = Raw::connect(gateway.addr).await;
    raw.write(b"POST /api/upload HTTP/1.1\r\nhost: gw\r\ncontent-length: 10485760\r\n\r\n")
        .await;
    raw.write(&vec![b'a'; 64 * 1024]).await;
    let head = raw.head_within(Duration::from_secs(3)).await;
    let head = head.expect("no answer before the body was sent: the gateway waited for it");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    // Authenticated, the POST body is read by `reader` on demand and the upstream is told.
    let reply = send(
        &client(),
        http::Method::POST,
        &gateway.url("/api/orders"),
        &[("x-api-key", KEY)],
        bytes::Bytes::from_static(b"{\"order\":42}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["x-body-bytes"], "12");
    gateway.shutdown().await;
}

/// Send a chunked request head and one chunk, then wait for the answer.
async fn partial_chunked(gateway: &Gateway, method: &str, path: &str) -> (Raw, Option<String>) {
    let mut raw = Raw::connect(gateway.addr).await;
    raw.write(
        format!("{method} {path} HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\n")
            .as_bytes(),
    )
    .await;
    raw.write(b"5\r\nhello\r\n").await;
    let head = raw.head_within(Duration::from_millis(1500)).await;
    (raw, head)
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_a_plugin_does_not_read_stream_and_a_0_1_body_plugin_still_buffers() {
    let (upstream, _task) = eager_upstream().await;
    let gateway = Gateway::start(&config(&upstream.to_string())).await;

    // `reader` reads only POST bodies: a GET's body streams, so the upstream's early answer
    // reaches the client while the body is still open.
    let (_raw, head) = partial_chunked(&gateway, "GET", "/reader/items").await;
    let head = head.expect("the GET was held: its body was buffered although nobody read it");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // The 0.1.0 fixture declared `request-body`: its route buffers as before, so nothing comes
    // back until the body is complete, and then the plugin saw all of it.
    let (mut raw, head) = partial_chunked(&gateway, "PUT", "/v01/items").await;
    assert!(
        head.is_none(),
        "a 0.1.0 body plugin must see the whole body: {head:?}"
    );
    raw.write(b"6\r\n world\r\n0\r\n\r\n").await;
    let head = raw
        .head_within(Duration::from_secs(3))
        .await
        .expect("answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-contract: 0.1.0"),
        "{head}"
    );
    gateway.shutdown().await;
}
