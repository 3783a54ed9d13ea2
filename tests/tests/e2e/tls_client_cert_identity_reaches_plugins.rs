//! mTLS optional: clients may present a certificate. The verified identity reaches plugins as
//! the context keys `tls.client.subject`, `tls.client.san` and `tls.client.fingerprint` (the
//! `auth` plugin's mTLS method maps it to a consumer); a client without a certificate gets no
//! identity, and no header it sends can fake one.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use tls_support::*;
use tollgate_tests::{Gateway, Upstream};

const CHAIN: &str = r#"chain = ["auth", "show"]

[plugins.auth]
module = "{plugins}/auth.wasm"
[plugins.auth.config]
methods = ["mtls"]
anonymous = { consumer = "anonymous" }
[[plugins.auth.config.mtls.identities]]
subject = "CN=billing,O=Acme"
consumer = "billing-service"
roles = ["billing"]

[plugins.show]
module = "{fixtures}/recorder.wasm"
[plugins.show.config]
name = "show"
[plugins.show.config.context_to_header]
"tls.client.subject" = "x-client-cert-subject"
"tls.client.san" = "x-client-cert-san"
"tls.client.fingerprint" = "x-client-cert-fingerprint"
"consumer" = "x-consumer-name"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_client_identity_is_in_the_plugin_context() {
    let server_ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
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
client_auth = "optional""#,
            &upstream.target(),
            CHAIN,
        ),
    )
    .await;
    let fakes = [
        ("x-client-cert-subject", "CN=admin,O=Acme"),
        ("x-client-cert-fingerprint", "00"),
        ("x-consumer-name", "admin"),
        ("tls-client-subject", "CN=admin"),
    ];

    let billing = client_ca.client("billing", "Acme", &["billing.acme.test", "10.1.2.3"]);
    let reply = https_get(
        gateway.addr,
        "api.test",
        client_config(&server_ca, Some(&billing), &[]),
        "/invoices",
        &fakes,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let headers = &reply.json()["headers"];
    assert_eq!(
        headers["x-client-cert-subject"],
        serde_json::json!(["CN=billing,O=Acme"])
    );
    assert_eq!(
        headers["x-client-cert-san"],
        serde_json::json!(["billing.acme.test,10.1.2.3"])
    );
    assert_eq!(
        headers["x-client-cert-fingerprint"],
        serde_json::json!([sha256_hex(billing.der.as_ref())])
    );
    assert_eq!(
        headers["x-consumer-name"],
        serde_json::json!(["billing-service"])
    );

    // No certificate: served (optional), with no identity, whatever headers the client sends.
    let reply = https_get(
        gateway.addr,
        "api.test",
        client_config(&server_ca, None, &[]),
        "/invoices",
        &fakes,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let headers = &reply.json()["headers"];
    assert!(headers.get("x-client-cert-subject").is_none(), "{headers}");
    assert!(
        headers.get("x-client-cert-fingerprint").is_none(),
        "{headers}"
    );
    assert_eq!(headers["x-consumer-name"], serde_json::json!(["anonymous"]));

    // A certificate the auth plugin does not know is a 401 from the plugin.
    let other = client_ca.client("reports", "Acme", &[]);
    let reply = https_get(
        gateway.addr,
        "api.test",
        client_config(&server_ca, Some(&other), &[]),
        "/invoices",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 401, "{:?}", reply.body);
    gateway.shutdown().await;
}
