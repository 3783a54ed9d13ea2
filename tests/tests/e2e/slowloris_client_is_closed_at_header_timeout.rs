//! A slowloris client trickles a request head one byte at a time: the gateway closes it at the
//! header read timeout, counted from the head's first byte however steadily bytes arrive, and
//! serves other clients meanwhile.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream, get};

const HEADER_TIMEOUT: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_request_head_is_cut_at_the_header_timeout_while_others_are_served() {
    let upstream = Upstream::echo("up").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[server]
header_read_timeout_ms = {}
idle_timeout_ms = 60000

[upstreams.up]
targets = ["{}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "up"
"#,
        HEADER_TIMEOUT.as_millis(),
        upstream.target()
    ))
    .await;

    let stream = TcpStream::connect(gateway.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // One byte every 100 ms: the head never ends, but bytes never stop either.
    let trickle = tokio::spawn(async move {
        let head = b"GET /slow HTTP/1.1\r\nhost: test\r\nx-slow: ";
        let mut sent = 0usize;
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        sent
    });

    // Meanwhile other clients get their answers at once.
    let mut served = 0;
    while started.elapsed() < HEADER_TIMEOUT.mul_f32(0.7) {
        let asked = Instant::now();
        let reply = get(&gateway.url("/fast"), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["path"], "/fast");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served >= 3,
        "only {served} requests served during the trickle"
    );

    // The gateway closes the slow connection without an answer to the unfinished head.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut answer)).await;
    let closed_after = started.elapsed();
    assert!(read.is_ok(), "slow connection still open after 20 s");
    assert!(
        closed_after >= HEADER_TIMEOUT.mul_f32(0.9),
        "closed too early: {closed_after:?}"
    );
    assert!(
        closed_after < HEADER_TIMEOUT + Duration::from_secs(3),
        "closed late: {closed_after:?}"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200"),
        "the unfinished head was answered: {}",
        String::from_utf8_lossy(&answer)
    );
    let sent = trickle.await.unwrap();
    assert!(
        sent >= 10,
        "the client sent only {sent} bytes before the close"
    );

    // The gateway still serves afterwards.
    assert_eq!(get(&gateway.url("/after"), &[]).await.status, 200);
}
