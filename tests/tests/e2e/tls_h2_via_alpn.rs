//! HTTPS clients that offer h2 by ALPN get HTTP/2; clients offering only http/1.1 get HTTP/1.1.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tls_support::*;
use tollgate_tests::{Gateway, Upstream};

#[tokio::test(flavor = "multi_thread")]
async fn h2_is_negotiated_by_alpn() {
    let ca = Ca::new("Test CA");
    let dir = tempfile::tempdir().unwrap();
    ca.server(&["shop.test"]).write(dir.path(), "shop");
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start_in(
        dir,
        &gateway_config(
            r#"[listeners.tls]
certs = [{ cert = "shop.pem", key = "shop.key" }]"#,
            &upstream.target(),
            "",
        ),
    )
    .await;

    // h2 offered first: the server picks it, and requests are served over HTTP/2.
    let stream = connect(
        gateway.addr,
        "shop.test",
        client_config(&ca, None, &[b"h2", b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for i in 0..3 {
        let req = Request::get(format!("https://shop.test/h2/{i}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        let reply = read(response).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["path"], format!("/h2/{i}"));
        assert_eq!(reply.json()["headers"]["host"][0], "shop.test");
    }

    // http/1.1 only: HTTP/1.1.
    let stream = connect(
        gateway.addr,
        "shop.test",
        client_config(&ca, None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut h1 = H1::new(stream, "shop.test").await.unwrap();
    let reply = h1.get("/h1", &[]).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["path"], "/h1");
    gateway.shutdown().await;
}
