//! Certificate rotation: new certificate files and `POST /admin/reload` make new handshakes use
//! the new certificate, while an open keep-alive connection keeps its session and goes on being
//! served. A reload with a broken key file changes nothing and says which file is wrong.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use tls_support::*;
use tollgate_tests::{Gateway, Upstream, admin_reload};

#[tokio::test(flavor = "multi_thread")]
async fn reload_swaps_certificates_without_dropping_connections() {
    let ca = Ca::new("Test CA");
    let dir = tempfile::tempdir().unwrap();
    let first = ca.server(&["api.test"]);
    first.write(dir.path(), "api");
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start_in(
        dir,
        &gateway_config(
            r#"[listeners.tls]
certs = [{ cert = "api.pem", key = "api.key" }]"#,
            &upstream.target(),
            "",
        ),
    )
    .await;
    let config = client_config(&ca, None, &[]);
    let cert_dir = gateway.config_path.parent().unwrap().to_owned();

    let stream = connect(gateway.addr, "api.test", config.clone())
        .await
        .unwrap();
    assert!(served_cert(&stream) == first.der);
    let mut open = H1::new(stream, "api.test").await.unwrap();
    assert_eq!(open.get("/before", &[]).await.unwrap().status, 200);

    // Rotate: new key and certificate under the same file names, then reload.
    let second = ca.server(&["api.test"]);
    second.write(&cert_dir, "api");
    let reload = admin_reload(&gateway).await;
    assert_eq!(reload.status, 200, "{:?}", reload.body);

    // The open connection keeps going on its session.
    for i in 0..3 {
        let reply = open.get(&format!("/after/{i}"), &[]).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["path"], format!("/after/{i}"));
    }
    // New connections get the new certificate.
    let stream = connect(gateway.addr, "api.test", config.clone())
        .await
        .unwrap();
    assert!(
        served_cert(&stream) == second.der,
        "the new certificate is not served"
    );

    // A broken key file: the reload is refused, naming the field, and nothing changes.
    std::fs::write(cert_dir.join("api.key"), "not a key").unwrap();
    let reload = admin_reload(&gateway).await;
    assert_eq!(reload.status, 422, "{:?}", reload.body);
    let issues = reload.json()["issues"].to_string();
    assert!(issues.contains("listeners[0].tls.certs[0].key"), "{issues}");
    let stream = connect(gateway.addr, "api.test", config).await.unwrap();
    assert!(served_cert(&stream) == second.der);
    assert_eq!(open.get("/still", &[]).await.unwrap().status, 200);
    gateway.shutdown().await;
}
