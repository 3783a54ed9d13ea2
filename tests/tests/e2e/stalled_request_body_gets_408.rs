//! A client sends half of its request body and stops: within the body read timeout it gets a
//! 408 JSON answer with `Connection: close`, and the request already streaming to the upstream
//! is aborted (the upstream sees its body fail, not a short body passed off as complete).

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tollgate_tests::Gateway;

const BODY_TIMEOUT: Duration = Duration::from_millis(1500);

/// An upstream that reads each request body and reports how reading it ended.
async fn reporting_upstream() -> (String, mpsc::UnboundedReceiver<Result<usize, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let read = req.into_body().collect().await;
                        let _ =
                            tx.send(read.map(|b| b.to_bytes().len()).map_err(|e| e.to_string()));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr.to_string(), rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_mid_way_gets_408_and_the_upstream_request_is_aborted() {
    let (upstream, mut seen) = reporting_upstream().await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[server]
body_read_timeout_ms = {}

[upstreams.up]
targets = ["{upstream}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "up"
"#,
        BODY_TIMEOUT.as_millis(),
    ))
    .await;

    // A complete body first: it reaches the upstream whole.
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 10\r\nconnection: close\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut whole = String::new();
    stream.read_to_string(&mut whole).await.unwrap();
    assert!(whole.starts_with("HTTP/1.1 200"), "{whole}");
    assert_eq!(seen.recv().await.unwrap(), Ok(10));

    // Then 10 of 100 promised bytes, and silence.
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    let read =
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut answer)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "no answer and no close within 20 s");
    assert!(
        elapsed >= BODY_TIMEOUT.mul_f32(0.9),
        "answered too early: {elapsed:?}"
    );
    assert!(
        elapsed < BODY_TIMEOUT + Duration::from_secs(3),
        "answered late: {elapsed:?}"
    );

    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"], "body_timeout", "{json}");

    // The upstream saw the body fail rather than end.
    let upstream_saw = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the upstream request ended")
        .unwrap();
    assert!(
        upstream_saw.is_err(),
        "upstream got a complete body: {upstream_saw:?}"
    );
}
