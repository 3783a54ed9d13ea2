//! An HTTPS listener with two certificates: the client's SNI picks which one it is served, a
//! client without a known name gets the first, and requests reach the upstream.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use tls_support::*;
use tollgate_tests::{Gateway, Upstream};

#[tokio::test(flavor = "multi_thread")]
async fn sni_picks_between_two_certificates() {
    let ca = Ca::new("Test CA");
    let shop = ca.server(&["shop.test", "127.0.0.1"]);
    let api = ca.server(&["api.test", "*.api.test"]);
    let dir = tempfile::tempdir().unwrap();
    shop.write(dir.path(), "shop");
    api.write(dir.path(), "api");
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start_in(
        dir,
        &gateway_config(
            r#"[listeners.tls]
certs = [{ cert = "shop.pem", key = "shop.key" }, { cert = "api.pem", key = "api.key" }]"#,
            &upstream.target(),
            "",
        ),
    )
    .await;
    let config = client_config(&ca, None, &[b"http/1.1"]);

    for (sni, expected, which) in [
        ("shop.test", &shop, "shop"),
        ("api.test", &api, "api"),
        ("v2.api.test", &api, "api (wildcard)"),
        // An IP address as the server name sends no SNI: the first certificate is the default.
        ("127.0.0.1", &shop, "shop (default)"),
    ] {
        let stream = connect(gateway.addr, sni, config.clone())
            .await
            .unwrap_or_else(|e| panic!("SNI {sni}: handshake failed: {e}"));
        assert!(
            served_cert(&stream) == expected.der,
            "SNI {sni}: expected the {which} certificate"
        );
        let mut h1 = H1::new(stream, sni).await.unwrap();
        let reply = h1.get("/hello?x=1", &[]).await.unwrap();
        assert_eq!(reply.status, 200, "SNI {sni}");
        let echo = reply.json();
        assert_eq!(echo["path"], "/hello");
        assert_eq!(echo["query"], "x=1");
    }
    gateway.shutdown().await;
}
