//! A client names the host it wants once and plainly, or gets 400 `bad_host` before routing
//! (RFC 9112 §3.2, RFC 9110 §7.2): no Host, two Host fields, whitespace, a path, userinfo or a
//! bad port in it, and over h2 the same faults in `:authority` or an `:authority` and `Host`
//! that disagree. The host that routes is the host the upstream gets.

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tollgate_tests::{Gateway, Upstream};

use crate::edge_support::{config, raw};

fn gateway_config(upstream: &Upstream) -> String {
    config(
        &upstream.target(),
        r#"
[[routes]]
name = "www"
hosts = ["www.example.com"]
path_prefix = "/"
upstream = "echo"
"#,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn http1_requests_with_a_missing_repeated_or_malformed_host_get_400() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream)).await;
    for (case, host_lines) in [
        ("no Host", ""),
        (
            "two equal Host fields",
            "Host: www.example.com\r\nHost: www.example.com\r\n",
        ),
        (
            "two different Host fields",
            "Host: www.example.com\r\nHost: other.example\r\n",
        ),
        ("whitespace", "Host: www.example .com\r\n"),
        ("a path", "Host: www.example.com/admin\r\n"),
        ("userinfo", "Host: a@www.example.com\r\n"),
        (
            "userinfo hiding the host",
            "Host: admin.example.com:1@www.example.com\r\n",
        ),
        ("a port out of range", "Host: www.example.com:99999\r\n"),
        ("a port that is no number", "Host: www.example.com:http\r\n"),
        ("an empty port", "Host: www.example.com:\r\n"),
    ] {
        let request = format!("GET /x HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n");
        let reply = raw(gateway.addr, request.as_bytes()).await;
        assert_eq!(reply.status, 400, "{case}: {reply:?}");
        assert_eq!(reply.json()["error"], "bad_host", "{case}: {reply:?}");
        assert!(
            reply.head.contains("content-type: application/json"),
            "{case}: {reply:?}"
        );
    }

    // A plain host, with or without a port, routes; the upstream gets exactly that host.
    for host in ["www.example.com", "WWW.example.com:8080"] {
        let request = format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let reply = raw(gateway.addr, request.as_bytes()).await;
        assert_eq!(reply.status, 200, "{host}: {reply:?}");
        let echo = reply.json();
        assert_eq!(echo["headers"]["host"][0], host);
        assert_eq!(echo["headers"]["x-forwarded-host"][0], host);
    }
    gateway.shutdown().await;
}

/// Send one h2c request (prior knowledge) with `uri` (its authority becomes `:authority`) and
/// an optional `Host`; the status.
async fn h2_status(gateway: &Gateway, uri: &str, host: Option<&str>) -> (u16, serde_json::Value) {
    let stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder().uri(uri).version(Version::HTTP_2);
    if let Some(host) = host {
        builder = builder.header("host", host);
    }
    let response = sender
        .send_request(builder.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_authority_faults_and_a_disagreeing_host_get_400() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream)).await;

    let (status, echo) = h2_status(&gateway, "http://www.example.com/x", None).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["headers"]["host"][0], "www.example.com");

    let (status, _) = h2_status(
        &gateway,
        "http://www.example.com/x",
        Some("www.example.com"),
    )
    .await;
    assert_eq!(status, 200, "the same host twice is one host");

    for (case, uri, host) in [
        (
            "disagreeing Host",
            "http://www.example.com/x",
            Some("admin.example.com"),
        ),
        ("userinfo", "http://a@www.example.com/x", None),
        (
            "userinfo hiding the host",
            "http://admin.example.com:1@www.example.com/x",
            None,
        ),
        (
            "a port out of range",
            "http://www.example.com:99999/x",
            None,
        ),
        (
            "a bad Host beside a good :authority",
            "http://www.example.com/x",
            Some("www.example.com/x"),
        ),
    ] {
        let (status, body) = h2_status(&gateway, uri, host).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(body["error"], "bad_host", "{case}: {body}");
    }
    gateway.shutdown().await;
}
