//! Two `transform` plugins in a chain change the request and response bodies; a strict client
//! reading raw bytes checks that every message is framed exactly: the upstream gets a
//! Content-Length equal to the body it reads (also when the client sent chunked, and when the
//! body became empty), the client gets a Content-Length equal to the body, with no
//! Transfer-Encoding and no stray bytes before the next response on the same connection — also
//! for HEAD, for a status changed to 204, and over HTTP/2.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_tests::Gateway;

const WAIT: Duration = Duration::from_secs(10);

/// A message head read off the wire: start line and lower-case headers.
#[derive(Debug)]
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    fn content_length(&self) -> Option<usize> {
        assert!(self.count("content-length") <= 1, "duplicate CL: {self:?}");
        self.get("content-length").map(|v| v.parse().unwrap())
    }
}

async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> Option<Head> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(WAIT, stream.read(&mut byte)).await {
            Ok(Ok(1)) => raw.push(byte[0]),
            Ok(_) if raw.is_empty() => return None,
            other => panic!("connection ended inside a head ({other:?}): {raw:?}"),
        }
    }
    let text = String::from_utf8(raw).unwrap();
    let mut lines = text.trim_end().split("\r\n");
    let start = lines.next().unwrap().to_owned();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    Some(Head { start, headers })
}

async fn read_exact(stream: &mut (impl AsyncRead + Unpin), len: usize) -> Vec<u8> {
    let mut body = vec![0u8; len];
    tokio::time::timeout(WAIT, stream.read_exact(&mut body))
        .await
        .expect("body arrives within the declared length")
        .unwrap();
    body
}

/// What the upstream received: head and exactly Content-Length body bytes.
type Seen = Arc<Mutex<Vec<(Head, Vec<u8>)>>>;

fn chunked(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

/// A raw HTTP/1.1 upstream that insists on Content-Length framing for request bodies and
/// answers with chunked or fixed-length responses.
async fn upstream(seen: Seen) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut stream).await {
                    assert_eq!(head.get("transfer-encoding"), None, "{head:?}");
                    let body = read_exact(&mut stream, head.content_length().unwrap_or(0)).await;
                    let method_path = head.start.clone();
                    seen.lock().unwrap().push((head, body));
                    let json = r#"{"result":{"a":1,"secret":"s"},"trace":"t"}"#;
                    let reply = if method_path.starts_with("HEAD ") {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            json.len()
                        )
                    } else if method_path.contains(" /accepted ")
                        || method_path.contains(" /empty ")
                    {
                        // `/empty` has no response rules, so its framing passes through as is.
                        let status = if method_path.contains(" /accepted ") {
                            "202 Accepted"
                        } else {
                            "200 OK"
                        };
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                            json.len()
                        )
                    } else {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{}",
                            chunked(json)
                        )
                    };
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
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

[upstreams.raw]
targets = ["{upstream}"]

[plugins.outer]
module = "{{plugins}}/transform.wasm"
[plugins.outer.config.request.body]
json = [{{ op = "set", path = "/outer", value = 1 }}, {{ op = "remove", path = "/drop" }}]
[plugins.outer.config.response]
status = {{ "202" = 204 }}
body.json = [{{ op = "remove", path = "/secret" }}, {{ op = "set", path = "/by", value = "outer" }}]

[plugins.inner]
module = "{{plugins}}/transform.wasm"
[plugins.inner.config.request.body]
json = [{{ op = "set", path = "/inner", value = true }}]
[plugins.inner.config.response.body]
json = [{{ op = "unwrap", key = "result" }}]

[plugins.to-form]
module = "{{plugins}}/transform.wasm"
config = {{ request.body = {{ convert = "json-to-form" }} }}

[[routes]]
name = "empty"
path_prefix = "/empty"
upstream = "raw"
chain = ["to-form"]

[[routes]]
name = "chain"
path_prefix = "/"
upstream = "raw"
chain = ["outer", "inner"]
"#
    )
}

/// Read one response strictly: exact Content-Length, no Transfer-Encoding, `no_body` for HEAD
/// and 204 (no bytes at all after the head).
async fn read_response(stream: &mut TcpStream, no_body: bool) -> (Head, Vec<u8>) {
    let head = read_head(stream).await.expect("a response");
    assert_eq!(head.get("transfer-encoding"), None, "{head:?}");
    let body = if no_body {
        Vec::new()
    } else {
        let length = head.content_length().expect("a Content-Length");
        read_exact(stream, length).await
    };
    (head, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_of_a_transform_chain_is_framed_exactly() {
    let seen: Seen = Arc::default();
    let gateway = Gateway::start(&config(&upstream(seen.clone()).await)).await;
    let mut client = TcpStream::connect(gateway.addr).await.unwrap();

    // 1. Chunked JSON request through both plugins; chunked upstream response back through both.
    let body = json!({ "keep": "k", "drop": "d" }).to_string();
    let request = format!(
        "POST /orders HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{}",
        chunked(&body)
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = read_response(&mut client, false).await;
    assert!(head.start.starts_with("HTTP/1.1 200"), "{head:?}");
    let out: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(out, json!({ "a": 1, "by": "outer" }));
    {
        let seen = seen.lock().unwrap();
        let (up_head, up_body) = seen.last().unwrap();
        assert_eq!(up_head.content_length(), Some(up_body.len()), "{up_head:?}");
        let sent: serde_json::Value = serde_json::from_slice(up_body).unwrap();
        assert_eq!(sent, json!({ "keep": "k", "outer": 1, "inner": true }));
    }

    // 2. HEAD on the same connection: the head carries a length, no body bytes follow.
    client
        .write_all(b"HEAD /orders HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut client, true).await;
    assert!(head.start.starts_with("HTTP/1.1 200"), "{head:?}");

    // 3. 202 changed to 204: no Content-Length, no body.
    client
        .write_all(b"GET /accepted HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut client, true).await;
    assert!(head.start.starts_with("HTTP/1.1 204"), "{head:?}");
    assert_eq!(head.get("content-length"), None, "{head:?}");

    // 4. A request body that becomes empty (`{}` as a form) reaches the upstream with
    //    Content-Length: 0. The response on the same connection proves nothing stray was left
    //    by the HEAD and 204 answers.
    client
        .write_all(
            b"POST /empty HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
    let (head, body) = read_response(&mut client, false).await;
    assert!(head.start.starts_with("HTTP/1.1 200"), "{head:?}");
    assert_eq!(body.len(), head.content_length().unwrap());
    {
        let seen = seen.lock().unwrap();
        let (up_head, up_body) = seen.last().unwrap();
        assert!(up_head.start.starts_with("POST /empty "), "{up_head:?}");
        assert_eq!(up_head.get("content-length"), Some("0"), "{up_head:?}");
        assert!(up_body.is_empty());
        assert_eq!(
            up_head.get("content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_responses_carry_the_new_length() {
    let seen: Seen = Arc::default();
    let gateway = Gateway::start(&config(&upstream(seen.clone()).await)).await;
    // h2c with prior knowledge; the h2 client refuses DATA that disagrees with content-length.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = Request::post(gateway.url("/orders"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(r#"{"drop":1}"#)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let length = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(length, body.len().to_string());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        json!({ "a": 1, "by": "outer" })
    );
    let (up_head, up_body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(up_head.content_length(), Some(up_body.len()));

    // HEAD and a 204 over h2: heads only, and the stream ends cleanly.
    let head = client
        .request(
            Request::head(gateway.url("/orders"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(
        head.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
    let gone = client
        .request(
            Request::get(gateway.url("/accepted"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert!(gone.headers().get("content-length").is_none());
    assert!(
        gone.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
    gateway.shutdown().await;
}
