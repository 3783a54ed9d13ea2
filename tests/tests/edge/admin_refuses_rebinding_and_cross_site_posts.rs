//! The admin API on loopback without a token: a web page cannot reach it through a rebound DNS
//! name (403 `forbidden_host` unless the Host is the admin address or a loopback name), nor make
//! the browser POST to it from another origin (403 `cross_site_request`, 415 for form bodies),
//! while curl-style clients work as before. The admin listener has the proxy's header timeout
//! and connection cap.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream, client, send};

use crate::edge_support::{config, raw};

fn gateway_config(upstream: &Upstream) -> String {
    config(
        &upstream.target(),
        r#"
[admin]
addr = "127.0.0.1:0"

[server]
header_read_timeout_ms = 500
max_connections = 3

[[routes]]
name = "all"
path_prefix = "/"
upstream = "echo"
"#,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn only_loopback_names_and_the_admin_address_are_served_without_a_token() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream)).await;
    let admin = gateway.admin.unwrap();
    let port = admin.port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
    ] {
        let request =
            format!("GET /admin/config HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let reply = raw(admin, request.as_bytes()).await;
        assert_eq!(reply.status, 403, "{host}: {reply:?}");
        assert_eq!(reply.json()["error"], "forbidden_host");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
    ] {
        let request =
            format!("GET /admin/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let reply = raw(admin, request.as_bytes()).await;
        assert_eq!(reply.status, 200, "{host}: {reply:?}");
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_a_web_page_could_send_are_refused_and_scripts_still_reload() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream)).await;
    let admin = gateway.admin.unwrap();
    let url = format!("http://{admin}/admin/reload");
    let post = |headers: Vec<(&'static str, String)>| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(&client(), Method::POST, &url, &headers, Bytes::new()).await
        }
    };
    // A form POST from another origin, and a `text/plain` one from a page that sends no Origin.
    let reply = post(vec![
        ("origin", "http://evil.example".into()),
        ("content-type", "application/x-www-form-urlencoded".into()),
    ])
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["error"], "cross_site_request");
    let reply = post(vec![("sec-fetch-site", "cross-site".into())]).await;
    assert_eq!(reply.status, 403);
    let reply = post(vec![("content-type", "text/plain".into())]).await;
    assert_eq!(reply.status, 415);
    assert_eq!(reply.json()["error"], "unsupported_media_type");

    // Scripts: JSON, no body type at all, or the admin API's own origin.
    let reply = post(vec![("content-type", "application/json".into())]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = post(vec![]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = post(vec![("origin", format!("http://{admin}"))]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_has_the_header_timeout_and_connection_cap() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream)).await;
    let admin = gateway.admin.unwrap();

    // A head that trickles in is cut at the header timeout (500 ms), not held open.
    let mut slow = TcpStream::connect(admin).await.unwrap();
    slow.write_all(b"GET /admin/health HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = loop {
        let _ = slow.write_all(b"X-A: b\r\n").await;
        match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => break true,
            Err(_) if started.elapsed() > Duration::from_secs(5) => break false,
            Err(_) => {}
        }
    };
    assert!(closed, "the slow head was never cut");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(slow);

    // Three idle connections fill the cap; the fourth gets a fast 503.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(admin).await.unwrap();
        stream
            .write_all(b"GET /admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let reply = raw(
        admin,
        b"GET /admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.json()["error"], "too_many_connections");
    drop(held);
    gateway.shutdown().await;
}
