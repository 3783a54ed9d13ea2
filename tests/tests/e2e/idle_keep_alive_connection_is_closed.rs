//! A keep-alive connection with no request in flight is closed after the idle timeout — after
//! its last response, or after connecting without sending anything — while a connection that
//! keeps sending requests stays open past it.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream};

const IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

async fn gateway(upstream: &Upstream) -> Gateway {
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[server]
idle_timeout_ms = {}
header_read_timeout_ms = 30000

[upstreams.up]
targets = ["{}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "up"
"#,
        IDLE_TIMEOUT.as_millis(),
        upstream.target()
    ))
    .await
}

/// Send a keep-alive GET on `stream` and read exactly one response; its head, lower-cased.
async fn exchange(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("response within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed before the response was complete");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap();
            if body.len() >= length {
                return head.to_owned();
            }
        }
    }
}

/// How long until the server closes `stream` (bounded by 20 s).
async fn time_to_close(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "connection still open after 20 s");
    assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
    started.elapsed()
}

fn assert_about_idle_timeout(elapsed: Duration) {
    assert!(
        elapsed >= IDLE_TIMEOUT.mul_f32(0.9),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < IDLE_TIMEOUT + Duration::from_secs(3),
        "closed late: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(&upstream).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let head = exchange(&mut stream, "/one").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    assert_about_idle_timeout(time_to_close(&mut stream).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_sends_a_request_is_closed_after_the_idle_timeout() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(&upstream).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    assert_about_idle_timeout(time_to_close(&mut stream).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_keep_alive_connection_outlives_the_idle_timeout() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(&upstream).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let started = Instant::now();
    let mut requests = 0;
    // Requests every 500 ms for twice the idle timeout, all on this one connection.
    while started.elapsed() < IDLE_TIMEOUT * 2 {
        let head = exchange(&mut stream, "/again").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        requests += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(requests >= 5, "{requests}");
    assert_about_idle_timeout(time_to_close(&mut stream).await + Duration::from_millis(500));
}
