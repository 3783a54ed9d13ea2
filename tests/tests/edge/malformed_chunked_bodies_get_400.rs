//! A client sends a chunked body the gateway cannot frame (size `-1`, `0x5`, `+5`, a size that
//! overflows, data without its CRLF, LF-only lines): it gets 400 JSON `bad_request_body`, not
//! a 502 blaming the upstream, and the upstream connection that received part of that body is
//! closed, never reused for the next request (which would read the rest as a request).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_tests::Gateway;

use crate::edge_support::{config, raw};

/// What the raw upstream saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// Requests read whole (head and body) and answered.
    complete: AtomicUsize,
    /// Connections that ended in the middle of a request body.
    aborted: AtomicUsize,
    /// Bytes that did not parse as HTTP/1.1: what a reused half-sent connection would show.
    garbage: AtomicUsize,
}

/// An HTTP/1.1 upstream written by hand, so it can count connections and tell a request cut
/// short from a clean one. Answers every complete request with 200 `ok`, keeping the connection.
async fn raw_upstream() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counters = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counters.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, counters.clone()));
        }
    });
    (addr, seen)
}

enum Parsed {
    /// A whole request of this many bytes.
    Done(usize),
    /// More bytes needed; `in_body` once the head is complete.
    More {
        in_body: bool,
    },
    Garbage,
}

async fn serve(mut stream: TcpStream, seen: Arc<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match parse(&buf) {
            Parsed::Done(used) => {
                buf.drain(..used);
                seen.complete.fetch_add(1, Ordering::SeqCst);
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                continue;
            }
            Parsed::Garbage => {
                seen.garbage.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Parsed::More { in_body } => match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    if in_body {
                        seen.aborted.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
        }
    }
}

fn parse(buf: &[u8]) -> Parsed {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.is_empty() || buf.starts_with(b"GET ") || buf.starts_with(b"POST ") {
            Parsed::More { in_body: false }
        } else {
            Parsed::Garbage
        };
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !(head.starts_with("get ") || head.starts_with("post ")) {
        return Parsed::Garbage;
    }
    let mut at = head_end + 4;
    if head.contains("transfer-encoding: chunked") {
        loop {
            let Some(line_end) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                return Parsed::More { in_body: true };
            };
            let line = String::from_utf8_lossy(&buf[at..at + line_end]).into_owned();
            let Ok(size) = usize::from_str_radix(line.trim(), 16) else {
                return Parsed::Garbage;
            };
            at += line_end + 2;
            if buf.len() < at + size + 2 {
                return Parsed::More { in_body: true };
            }
            if &buf[at + size..at + size + 2] != b"\r\n" {
                return Parsed::Garbage;
            }
            at += size + 2;
            if size == 0 {
                return Parsed::Done(at);
            }
        }
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if buf.len() < at + length {
        return Parsed::More { in_body: true };
    }
    at += length;
    Parsed::Done(at)
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_chunk_framing_is_the_clients_400_and_the_upstream_connection_is_dropped() {
    let (upstream, seen) = raw_upstream().await;
    let text = config(
        &upstream.to_string(),
        r#"
[[routes]]
name = "all"
path_prefix = "/"
upstream = "echo"
"#,
    );
    let gateway = Gateway::start(&text).await;
    let good = b"GET /ok HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n";
    let reply = raw(gateway.addr, good).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    for (case, body) in [
        ("negative size", "3\r\nabc\r\n-1\r\nx\r\n0\r\n\r\n"),
        ("0x prefix", "3\r\nabc\r\n0x5\r\nhello\r\n0\r\n\r\n"),
        ("plus sign", "3\r\nabc\r\n+5\r\nhello\r\n0\r\n\r\n"),
        (
            "overflowing size",
            "3\r\nabc\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        ("data without CRLF", "3\r\nabc\r\n5\r\nhelloXX0\r\n\r\n"),
        ("LF-only lines", "3\r\nabc\r\n5\nhello\n0\n\n"),
        ("bad first size", "-1\r\nabc\r\n0\r\n\r\n"),
    ] {
        let request = format!(
            "POST /upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        let reply = raw(gateway.addr, request.as_bytes()).await;
        assert_eq!(reply.status, 400, "{case}: {reply:?}");
        let json = reply.json();
        assert_eq!(json["error"], "bad_request_body", "{case}: {json}");
        assert!(
            json["message"]
                .as_str()
                .unwrap_or_default()
                .contains("chunk"),
            "{case}: the message says what was wrong: {json}"
        );
        // The next request is served cleanly: no connection carried the rest of a body.
        let reply = raw(gateway.addr, good).await;
        assert_eq!(reply.status, 200, "after {case}: {reply:?}");
    }
    assert_eq!(
        seen.garbage.load(Ordering::SeqCst),
        0,
        "a half-sent connection was reused"
    );
    // Every connection that got part of a body was closed, not answered and reused; the good
    // requests were answered on connections that never carried one.
    let connections = seen.connections.load(Ordering::SeqCst);
    let aborted = seen.aborted.load(Ordering::SeqCst);
    assert_eq!(seen.complete.load(Ordering::SeqCst), 8);
    assert!(
        connections > aborted,
        "connections {connections}, aborted {aborted}"
    );
    gateway.shutdown().await;
}
