//! Raw-socket helpers for the edge scenarios: requests written byte for byte (a client library
//! would normalise them), and the answer read as text.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw HTTP/1 answer.
#[derive(Debug)]
pub struct RawReply {
    /// The status code (0 when nothing parseable came back).
    pub status: u16,
    /// The head, lower-cased.
    pub head: String,
    /// The body as text (chunked framing left in place).
    pub body: String,
}

impl RawReply {
    /// The body parsed as JSON (panics with the text when it is not).
    pub fn json(&self) -> serde_json::Value {
        let text = self.body.trim();
        let start = text.find('{').unwrap_or(0);
        let end = text.rfind('}').map_or(text.len(), |e| e + 1);
        serde_json::from_str(&text[start..end])
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Write `request` as it is, then read until the server closes or `wait` passes without a byte.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawReply {
    raw_with(addr, request, Duration::from_secs(3)).await
}

/// [`raw`] with an explicit quiet time.
pub async fn raw_with(addr: SocketAddr, request: &[u8], wait: Duration) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    parse(&out)
}

/// Parse the first response in `bytes`.
pub fn parse(bytes: &[u8]) -> RawReply {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawReply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// A gateway config with one echo upstream and the given plugins and routes (TOML text).
pub fn config(upstream: &str, rest: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

{rest}
"#
    )
}
