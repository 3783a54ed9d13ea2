//! An operator adapts JSON bodies with `transform`: request fields are set, removed, renamed and
//! moved and the body is wrapped in an envelope; the upstream's response is unwrapped from its
//! envelope, loses an internal field and its status is changed. Content-Length always matches
//! the new bodies, and bodies that are not JSON pass untouched.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use http_body_util::Full;
use serde_json::json;
use tollgate_tests::{Gateway, Upstream, client, send};

fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.legacy]
targets = ["{upstream}"]

[plugins.shape]
module = "{{plugins}}/transform.wasm"

[[plugins.shape.config.request.body.json]]
op = "set"
path = "/meta/source"
value = "gateway"

[[plugins.shape.config.request.body.json]]
op = "remove"
path = "/password"

[[plugins.shape.config.request.body.json]]
op = "rename"
path = "/user/name"
to = "login"

[[plugins.shape.config.request.body.json]]
op = "move"
path = "/user/id"
to = "/account/id"

[[plugins.shape.config.request.body.json]]
op = "wrap"
key = "payload"

[plugins.shape.config.response]
status = {{ "201" = 200, "404" = 204 }}

[[plugins.shape.config.response.body.json]]
op = "unwrap"
key = "result"

[[plugins.shape.config.response.body.json]]
op = "remove"
path = "/internal"

[[routes]]
name = "api"
path_prefix = "/"
upstream = "legacy"
chain = ["shape"]
"#
    )
}

/// Answers `/missing` with 404 and a JSON body, `/html` with HTML, and everything else with
/// 201 and `{"result": {"received": <request body as JSON>, "internal": ...}, "trace": ...}`.
async fn upstream() -> Upstream {
    Upstream::start(Arc::new(|req| {
        Box::pin(async move {
            let (status, content_type, body) = match req.uri().path() {
                "/missing" => (
                    404,
                    "application/json",
                    json!({"error": "gone"}).to_string(),
                ),
                "/html" => (200, "text/html", "<p>{not json</p>".to_owned()),
                _ => {
                    let received: serde_json::Value =
                        serde_json::from_slice(req.body()).unwrap_or(json!(null));
                    let length = req
                        .headers()
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned();
                    let body = json!({
                        "result": { "received": received, "length": length,
                                    "actual": req.body().len(), "internal": "x" },
                        "trace": "t-1",
                    });
                    (201, "application/json; charset=utf-8", body.to_string())
                }
            };
            Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        })
    }))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_response_json_are_reshaped() {
    let upstream = upstream().await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let body = json!({ "user": { "name": "ann", "id": 7 }, "password": "hunter2", "items": [1] });
    let reply = send(
        &client(),
        Method::POST,
        &gateway.url("/orders"),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "201 mapped to 200: {:?}", reply.body);
    let out = reply.json();
    assert_eq!(
        out["received"],
        json!({ "payload": {
            "user": { "login": "ann" },
            "account": { "id": 7 },
            "items": [1],
            "meta": { "source": "gateway" },
        }})
    );
    assert_eq!(
        out["length"],
        out["actual"].to_string(),
        "the upstream got an exact Content-Length"
    );
    assert!(out.get("internal").is_none(), "{out}");
    assert!(out.get("trace").is_none(), "unwrapped: {out}");
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_mapping_and_bodies_that_are_not_json() {
    let upstream = upstream().await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    // 404 becomes 204: no body and no Content-Length.
    let reply = send(&client(), Method::GET, &gateway.url("/missing"), &[], "").await;
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty(), "{:?}", reply.body);
    assert_eq!(reply.header("content-length"), None);

    let reply = send(&client(), Method::GET, &gateway.url("/html"), &[], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"<p>{not json</p>");

    // A request body that claims JSON but is not: 400 from the plugin, upstream not called.
    let reply = send(
        &client(),
        Method::POST,
        &gateway.url("/orders"),
        &[("content-type", "application/json")],
        "{broken",
    )
    .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_body");

    // A text body is not JSON's business: it passes as is (and the upstream echoes null).
    let reply = send(
        &client(),
        Method::POST,
        &gateway.url("/orders"),
        &[("content-type", "text/plain")],
        "hello",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["actual"], 5);
    gateway.shutdown().await;
}
