//! The upstream learns the scheme the client used (`X-Forwarded-Proto: https` on TLS listeners,
//! `http` on plain ones, whatever the client claimed), and HTTP/2 `cookie` fields, which clients
//! send one per cookie, reach an HTTP/1.1 upstream as one `cookie` joined with `; `
//! (RFC 9113 §8.2.3).

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream};

use crate::tls_support::{Ca, client_config, gateway_config, https_get};

#[tokio::test(flavor = "multi_thread")]
async fn tls_listeners_forward_https_and_plain_ones_http() {
    let ca = Ca::new("Test CA");
    let dir = tempfile::tempdir().unwrap();
    ca.server(&["shop.test"]).write(dir.path(), "shop");
    let upstream = Upstream::echo("echo").await;
    let tls = Gateway::start_in(
        dir,
        &gateway_config(
            r#"[listeners.tls]
certs = [{ cert = "shop.pem", key = "shop.key" }]"#,
            &upstream.target(),
            "",
        ),
    )
    .await;
    let config = client_config(&ca, None, &[b"http/1.1"]);
    let reply = https_get(
        tls.addr,
        "shop.test",
        config,
        "/a",
        &[("x-forwarded-proto", "http")],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["headers"]["x-forwarded-proto"],
        serde_json::json!(["https"])
    );
    tls.shutdown().await;

    let plain = Gateway::start(&gateway_config("", &upstream.target(), "")).await;
    let reply = tollgate_tests::get(&plain.url("/b"), &[("x-forwarded-proto", "https")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["headers"]["x-forwarded-proto"],
        serde_json::json!(["http"])
    );
    plain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_cookie_fields_reach_an_http1_upstream_as_one_header() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config("", &upstream.target(), "")).await;
    let stream = TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("http://{}/c", gateway.addr))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("cookie", "c=3")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        echo["headers"]["cookie"],
        serde_json::json!(["a=1; b=2; c=3"])
    );
    gateway.shutdown().await;
}
