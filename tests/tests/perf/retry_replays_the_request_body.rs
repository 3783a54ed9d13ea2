//! A request whose first target refuses the connection is retried on the next target with the
//! whole body it came with, whether the body was declared (Content-Length), chunked (HTTP/1.1) or
//! neither (HTTP/2 without content-length): never with an empty or short one.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream, dead_port};

fn config(dead: &str, live: &str) -> String {
    format!(
        r#"[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.up]
targets = ["{dead}", "{live}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "up"
"#
    )
}

/// A body sent in parts, one DATA frame (or chunk) each, with no declared length.
struct Streamed(VecDeque<Bytes>);

impl Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|part| Ok(Frame::data(part))))
    }
}

fn streamed(parts: Vec<Bytes>) -> Streamed {
    Streamed(parts.into())
}

fn payload(len: usize) -> Vec<Bytes> {
    let text: String = (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    text.as_bytes()
        .chunks(8 * 1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

async fn setup() -> (Gateway, Upstream) {
    let live = Upstream::echo("live").await;
    let dead = dead_port().await;
    let gateway = Gateway::start(&config(&dead.to_string(), &live.target())).await;
    (gateway, live)
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_put_without_length_reaches_the_second_target_whole() {
    let (gateway, _live) = setup().await;
    for len in [11, 100 * 1024] {
        let stream = TcpStream::connect(gateway.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let parts = payload(len);
        let expected: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("http://{}/items/1", gateway.addr))
            .body(streamed(parts))
            .unwrap();
        assert!(req.headers().get("content-length").is_none());
        let response = sender.send_request(req).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo["upstream"], "live");
        assert_eq!(echo["method"], "PUT");
        assert_eq!(
            echo["body"].as_str().map(str::len),
            Some(expected.len()),
            "the retried request must carry the whole body"
        );
        assert_eq!(echo["body"].as_str().unwrap().as_bytes(), &expected[..]);
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_http1_put_is_retried_with_its_body() {
    let (gateway, _live) = setup().await;
    let stream = TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/items/2")
        .header("host", "shop.test")
        .header("transfer-encoding", "chunked")
        .body(streamed(vec![
            Bytes::from_static(b"first,"),
            Bytes::from_static(b"second"),
        ]))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["upstream"], "live");
    assert_eq!(echo["body"], "first,second");
    gateway.shutdown().await;
}
