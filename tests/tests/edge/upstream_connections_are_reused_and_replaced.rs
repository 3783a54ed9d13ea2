//! The gateway's keep-alive connections to a plain-HTTP upstream: reused across requests (the
//! upstream accepts a handful, not one per request), never crossing two requests' responses
//! under concurrency, and replaced without a failed request when the upstream closes them,
//! whether it says so (`Connection: close`) or just hangs up after answering. A dead target
//! still fails fast with the gateway's JSON 502.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_tests::{Gateway, client, dead_port, get, send};

/// How a raw upstream treats its connections after answering.
#[derive(Clone, Copy, PartialEq)]
enum AfterAnswer {
    KeepOpen,
    /// Answers with `Connection: close`, then closes.
    SayCloseAndClose,
    /// Answers as if keeping the connection, then closes it without a word.
    HangUp,
}

/// An HTTP/1.1 upstream written on raw sockets: it answers each request with its path and its
/// `host` header as the body, and counts the connections it accepted.
struct RawUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl RawUpstream {
    async fn start(after: AfterAnswer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, after));
            }
        });
        Self { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Serve requests without bodies on `stream` until the client closes it or `after` says stop.
async fn serve(mut stream: TcpStream, after: AfterAnswer) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end + 4);
        let path = head.split(' ').nth(1).unwrap_or("?").to_owned();
        let host = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("host")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        let body = format!("{path} {host}");
        let connection = match after {
            AfterAnswer::SayCloseAndClose => "close",
            _ => "keep-alive",
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() || after != AfterAnswer::KeepOpen {
            return;
        }
    }
}

async fn gateway(target: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.up]
targets = ["{target}"]
connect_timeout_ms = 1000

[[routes]]
name = "all"
path_prefix = "/"
upstream = "up"
"#
    ))
    .await
}

#[tokio::test]
async fn sequential_requests_share_a_few_connections() {
    let upstream = RawUpstream::start(AfterAnswer::KeepOpen).await;
    let gw = gateway(&upstream.addr.to_string()).await;
    let client = client();
    for i in 0..100 {
        let path = format!("/seq/{i}");
        let reply = send(&client, http::Method::GET, &gw.url(&path), &[], "").await;
        assert_eq!(reply.status, 200, "request {i}");
        assert!(
            reply.body.starts_with(path.as_bytes()),
            "request {i}: {:?}",
            reply.body
        );
    }
    let accepted = upstream.accepted();
    assert!(
        (1..=4).contains(&accepted),
        "100 sequential requests opened {accepted} upstream connections"
    );
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_response() {
    let upstream = RawUpstream::start(AfterAnswer::KeepOpen).await;
    let gw = gateway(&upstream.addr.to_string()).await;
    let client = client();
    for round in 0..5 {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..32 {
            let (client, url) = (client.clone(), gw.url(&format!("/c/{round}/{i}")));
            requests
                .spawn(async move { (i, send(&client, http::Method::GET, &url, &[], "").await) });
        }
        while let Some(joined) = requests.join_next().await {
            let (i, reply) = joined.unwrap();
            assert_eq!(reply.status, 200);
            let expected = format!("/c/{round}/{i} ");
            assert!(
                reply.body.starts_with(expected.as_bytes()),
                "request {round}/{i} got {:?}",
                reply.body
            );
        }
    }
    // Connections are reused across rounds: at most one per request in flight at once.
    let accepted = upstream.accepted();
    assert!(accepted <= 64, "160 requests opened {accepted} connections");
}

#[tokio::test]
async fn the_host_header_reaches_the_upstream() {
    let upstream = RawUpstream::start(AfterAnswer::KeepOpen).await;
    let gw = gateway(&upstream.addr.to_string()).await;
    let reply = get(&gw.url("/h"), &[("host", "api.example.com")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "/h api.example.com");
}

#[tokio::test]
async fn upstreams_closing_connections_fail_no_request() {
    for after in [AfterAnswer::SayCloseAndClose, AfterAnswer::HangUp] {
        let upstream = RawUpstream::start(after).await;
        let gw = gateway(&upstream.addr.to_string()).await;
        let client = client();
        for i in 0..50 {
            let path = format!("/closing/{i}");
            let reply = send(&client, http::Method::GET, &gw.url(&path), &[], "").await;
            assert_eq!(reply.status, 200, "request {i}: {:?}", reply.body);
            assert!(reply.body.starts_with(path.as_bytes()));
            // A pause lets a hang-up be seen before the next request, as between real requests.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(upstream.accepted(), 50, "one connection per request");
    }
}

#[tokio::test]
async fn a_dead_target_gets_a_json_502() {
    let dead = dead_port().await;
    let gw = gateway(&dead.to_string()).await;
    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, 502);
    let json = reply.json();
    assert!(
        json.to_string().contains("unreachable"),
        "502 body names the cause: {json}"
    );
}
