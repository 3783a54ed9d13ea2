//! mTLS required: a listener with `client_ca` and `client_auth = "required"` serves clients
//! with a certificate signed by that CA, and fails the handshake for clients without one or
//! with one from another CA.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use tls_support::*;
use tollgate_tests::{Gateway, Upstream};

#[tokio::test(flavor = "multi_thread")]
async fn clients_need_a_certificate_from_the_ca() {
    let server_ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
    let stranger_ca = Ca::new("Stranger CA");
    let dir = tempfile::tempdir().unwrap();
    server_ca.server(&["api.test"]).write(dir.path(), "api");
    std::fs::write(dir.path().join("clients.pem"), client_ca.pem()).unwrap();
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start_in(
        dir,
        &gateway_config(
            r#"[listeners.tls]
certs = [{ cert = "api.pem", key = "api.key" }]
client_ca = "clients.pem"
client_auth = "required""#,
            &upstream.target(),
            "",
        ),
    )
    .await;

    let good = client_ca.client("billing", "Acme", &["billing.acme.test"]);
    let reply = https_get(
        gateway.addr,
        "api.test",
        client_config(&server_ca, Some(&good), &[]),
        "/orders",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["path"], "/orders");

    // No certificate: the handshake fails (with TLS 1.3 the client learns it on first use).
    let without = https_get(
        gateway.addr,
        "api.test",
        client_config(&server_ca, None, &[]),
        "/orders",
        &[],
    )
    .await;
    assert!(
        without.is_err(),
        "served without a client certificate: {without:?}"
    );

    // A certificate from a CA the listener does not trust: refused too.
    let stranger = stranger_ca.client("billing", "Acme", &[]);
    let refused = https_get(
        gateway.addr,
        "api.test",
        client_config(&server_ca, Some(&stranger), &[]),
        "/orders",
        &[],
    )
    .await;
    assert!(
        refused.is_err(),
        "served with an untrusted certificate: {refused:?}"
    );

    // The listener still serves good clients afterwards.
    let again = https_get(
        gateway.addr,
        "api.test",
        client_config(&server_ca, Some(&good), &[]),
        "/again",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(again.status, 200);
    gateway.shutdown().await;
}
