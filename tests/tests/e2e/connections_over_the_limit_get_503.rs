//! With `max_connections = N`, the N+1th connection gets a fast 503 JSON answer and is closed
//! while the first N stay open and keep being served; a freed slot is usable again; the
//! metrics show the open connections and the refusals.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream, get};

const LIMIT: usize = 3;

/// One keep-alive GET on `stream`; the whole response (head and body) as text.
async fn exchange(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /held HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("response within 10 s")
            .unwrap();
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// Connect, send a GET (`Connection: close`), read until the server closes.
async fn one_shot(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /extra HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "connection neither answered nor closed in 10 s"
    );
    String::from_utf8_lossy(&out).into_owned()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains("listener=\"main\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_past_the_limit_gets_a_fast_503_and_the_first_ones_stay_served() {
    tollgate::admin::install_metrics_recorder();
    let upstream = Upstream::echo("up").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
name = "main"
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[server]
max_connections = {LIMIT}
idle_timeout_ms = 60000

[upstreams.up]
targets = ["{}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "up"
"#,
        upstream.target()
    ))
    .await;
    let admin = gateway.admin.unwrap();

    // N connections, each served once and then held open.
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
        assert!(exchange(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }

    // The next one: 503 JSON, Connection: close, fast, then closed.
    let asked = Instant::now();
    let answer = one_shot(gateway.addr).await;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "refusal took {took:?}");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{answer:?}"));
    assert!(head.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"], "too_many_connections", "{json}");

    // The held connections are still served.
    for stream in &mut held {
        assert!(exchange(stream).await.starts_with("HTTP/1.1 200"));
    }

    let metrics = get(&format!("http://{admin}/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert_eq!(
        metric(&text, "tollgate_active_connections"),
        Some(LIMIT as f64),
        "{text}"
    );
    assert!(
        metric(&text, "tollgate_connections_refused_total").is_some_and(|n| n >= 1.0),
        "{text}"
    );

    // Free one slot: a new connection is served again (the close is noticed asynchronously).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = one_shot(gateway.addr).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
