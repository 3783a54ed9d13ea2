//! A `transform` config with only header rules keeps bodies streaming in both directions: the
//! upstream gets the request head while the client is still sending the body, and the client
//! gets the first response bytes while the upstream is still sending. With body rules the
//! plugin asks for the body, so the gateway waits for all of it (and still answers correctly).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tollgate_tests::{Gateway, client};

const WAIT: Duration = Duration::from_secs(15);
/// How long "nothing arrives" is watched for; generous for a loaded machine only in the
/// direction that cannot make the test pass wrongly (a slow gateway makes it pass, not fail).
const QUIET: Duration = Duration::from_millis(700);

/// A raw upstream: signals on `heads` when a request head arrives, reads the body (chunked or
/// fixed), answers `{"a":` at once and `1}` only after a permit is added to `release`.
async fn upstream(heads: mpsc::UnboundedSender<String>, release: Arc<Semaphore>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let heads = heads.clone();
            let release = release.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    buf.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                let _ = heads.send(head.lines().next().unwrap_or_default().to_owned());
                if head.contains("transfer-encoding: chunked") {
                    let mut body = Vec::new();
                    while !body.ends_with(b"0\r\n\r\n") {
                        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        body.push(byte[0]);
                    }
                } else if let Some(len) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                {
                    let mut body = vec![0u8; len];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                }
                let first = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n";
                if stream.write_all(first.as_bytes()).await.is_err() {
                    return;
                }
                let Ok(permit) = release.acquire().await else {
                    return;
                };
                permit.forget();
                let _ = stream.write_all(b"2\r\n1}\r\n0\r\n\r\n").await;
            });
        }
    });
    addr
}

fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.up]
targets = ["{upstream}"]

[plugins.heads-only]
module = "{{plugins}}/transform.wasm"
[plugins.heads-only.config]
request.headers.set = {{ "x-shaped" = "1" }}
request.path = {{ strip_prefix = "/stream" }}
response.headers.set = {{ "x-shaped" = "1" }}

[plugins.bodies]
module = "{{plugins}}/transform.wasm"
[plugins.bodies.config]
request.body.json = [{{ op = "set", path = "/b", value = 1 }}]
response.body.json = [{{ op = "wrap", key = "data" }}]

[[routes]]
name = "stream"
path_prefix = "/stream"
upstream = "up"
chain = ["heads-only"]

[[routes]]
name = "buffer"
path_prefix = "/buffer"
upstream = "up"
chain = ["bodies"]
"#
    )
}

/// Send a chunked request head and first chunk; the rest only when `finish` is called.
async fn start_chunked(gateway: &Gateway, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{{\"x\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

async fn finish(stream: &mut TcpStream) {
    stream.write_all(b"4\r\n\":1}\r\n0\r\n\r\n").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn header_rules_stream_and_body_rules_buffer_the_request() {
    let (tx, mut heads) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(100));
    let gateway = Gateway::start(&config(&upstream(tx, release).await)).await;

    // Header rules only: the upstream sees the (rewritten) head before the body is complete.
    let mut stream = start_chunked(&gateway, "/stream/in").await;
    let head = tokio::time::timeout(WAIT, heads.recv())
        .await
        .expect("the head is forwarded while the body is still coming")
        .unwrap();
    assert_eq!(head, "post /in http/1.1");
    finish(&mut stream).await;

    // Body rules: nothing reaches the upstream until the whole body is in.
    let mut stream = start_chunked(&gateway, "/buffer/in").await;
    assert!(
        tokio::time::timeout(QUIET, heads.recv()).await.is_err(),
        "the upstream got the head before the body was complete"
    );
    finish(&mut stream).await;
    let head = tokio::time::timeout(WAIT, heads.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head, "post /buffer/in http/1.1");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_rules_stream_and_body_rules_buffer_the_response() {
    let (tx, _heads) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let gateway = Gateway::start(&config(&upstream(tx, release.clone()).await)).await;
    let client = client();
    let get = |path: &str| {
        Request::get(gateway.url(path))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };

    // Header rules only: the first bytes arrive while the upstream holds the rest.
    let mut response = tokio::time::timeout(WAIT, client.request(get("/stream/out")))
        .await
        .expect("the head arrives while the upstream is still sending")
        .unwrap();
    assert_eq!(response.headers()["x-shaped"], "1");
    let first = tokio::time::timeout(WAIT, response.body_mut().frame())
        .await
        .expect("the first chunk arrives while the upstream is still sending")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "{\"a\":");
    release.add_permits(1);
    let rest = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(rest, "1}");

    // Body rules: the client gets nothing until the upstream is done, then the new body.
    let pending = tokio::spawn(client.request(get("/buffer/out")));
    tokio::time::sleep(QUIET).await;
    assert!(
        !pending.is_finished(),
        "answered before the upstream body ended"
    );
    release.add_permits(1);
    let response = tokio::time::timeout(WAIT, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"data":{"a":1}}"#);
    gateway.shutdown().await;
}
