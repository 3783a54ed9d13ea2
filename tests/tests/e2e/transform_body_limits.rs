//! Bodies a `transform` route would buffer are capped: over `[limits] max_body_bytes` the client
//! gets 413 (declared or chunked), over `max_response_body_bytes` 502, and over the plugin's own
//! `max_body_bytes` 413 / 502 from the plugin — each with a JSON body, and the gateway keeps
//! serving.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response};
use http_body_util::Full;
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate_tests::{Gateway, Upstream, client, send};

fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[limits]
max_body_bytes = 4096
max_response_body_bytes = 4096

[upstreams.big]
targets = ["{upstream}"]

[plugins.shape]
module = "{{plugins}}/transform.wasm"
[plugins.shape.config]
max_body_bytes = 1024
request.body.json = [{{ op = "wrap", key = "data" }}]
response.body.json = [{{ op = "wrap", key = "data" }}]

[[routes]]
name = "big"
path_prefix = "/"
upstream = "big"
chain = ["shape"]
"#
    )
}

/// `/size/N` answers a JSON string body of N bytes (`"xxx…"`).
async fn upstream() -> Upstream {
    Upstream::start(Arc::new(|req| {
        Box::pin(async move {
            let n: usize = req
                .uri()
                .path()
                .trim_start_matches("/size/")
                .parse()
                .unwrap_or(2);
            let body = format!("\"{}\"", "x".repeat(n.saturating_sub(2)));
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        })
    }))
    .await
}

fn json_body(n: usize) -> String {
    format!("\"{}\"", "y".repeat(n - 2))
}

fn assert_error(reply: &tollgate_tests::Reply, status: u16, code: &str) {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["error"], code);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_over_the_caps_are_refused() {
    let upstream = upstream().await;
    let gateway = Gateway::start(&config(&upstream.target())).await;
    let json = [("content-type", "application/json")];
    let url = gateway.url("/size/10");

    let ok = send(&client(), Method::POST, &url, &json, json_body(1000)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);

    // Over the plugin's cap, under the gateway's: the plugin answers 413.
    let reply = send(&client(), Method::POST, &url, &json, json_body(2000)).await;
    assert_error(&reply, 413, "body_too_large");
    assert_eq!(reply.json()["plugin"], "transform");

    // Over the gateway's cap, declared: 413 before any plugin runs.
    let reply = send(&client(), Method::POST, &url, &json, json_body(5000)).await;
    assert_error(&reply, 413, "body_too_large");
    assert!(reply.json().get("plugin").is_none());

    // Over the gateway's cap, chunked (no declared size): still 413 while buffering.
    let chunked_client: Client<_, Chunks> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::post(&url)
        .header("content-type", "application/json")
        .body(Chunks(10))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), chunked_client.request(request))
        .await
        .expect("answered, not hung")
        .unwrap();
    assert_eq!(response.status(), 413);

    let ok = send(&client(), Method::POST, &url, &json, json_body(10)).await;
    assert_eq!(ok.status, 200, "still serving: {:?}", ok.body);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn response_bodies_over_the_caps_are_refused() {
    let upstream = upstream().await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let ok = send(&client(), Method::GET, &gateway.url("/size/1000"), &[], "").await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.json()["data"].as_str().unwrap().len(), 998);

    let reply = send(&client(), Method::GET, &gateway.url("/size/2000"), &[], "").await;
    assert_error(&reply, 502, "upstream_body_too_large");
    assert_eq!(reply.json()["plugin"], "transform");

    let reply = send(&client(), Method::GET, &gateway.url("/size/5000"), &[], "").await;
    assert_error(&reply, 502, "upstream_body_too_large");
    assert!(reply.json().get("plugin").is_none(), "the gateway's cap");
    gateway.shutdown().await;
}

/// `n` chunks of 1000 bytes with no declared size, so the client sends them chunked.
struct Chunks(u32);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        self.0 -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'z'; 1000])))))
    }
}
