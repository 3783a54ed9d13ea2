//! An upstream that requires client certificates: the upstream with `client_cert` and
//! `client_key` is served (and the upstream sees that certificate), one without gets a 502.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use tls_support::*;
use tollgate_tests::{Gateway, get};

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_presents_its_client_certificate() {
    let upstream_ca = Ca::new("Upstream CA");
    let gateway_ca = Ca::new("Gateway client CA");
    let upstream = TlsUpstream::start(
        "strict",
        &upstream_ca.server(&["localhost"]),
        Some(&gateway_ca),
    )
    .await;
    let port = upstream.addr.port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("upstream-ca.pem"), upstream_ca.pem()).unwrap();
    let client = gateway_ca.client("tollgate", "Acme", &["gateway.acme.test"]);
    client.write(dir.path(), "gateway-client");
    let config = format!(
        r#"[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.with_cert]
targets = ["https://localhost:{port}"]
[upstreams.with_cert.tls]
ca = "upstream-ca.pem"
client_cert = "gateway-client.pem"
client_key = "gateway-client.key"

[upstreams.without_cert]
targets = ["https://localhost:{port}"]
[upstreams.without_cert.tls]
ca = "upstream-ca.pem"

[[routes]]
name = "with"
path_prefix = "/with"
upstream = "with_cert"

[[routes]]
name = "without"
path_prefix = "/without"
upstream = "without_cert"
"#
    );
    let gateway = Gateway::start_in(dir, &config).await;

    let reply = get(&gateway.url("/with/x"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.header("x-seen-client-cert"),
        Some(sha256_hex(client.der.as_ref()).as_str())
    );

    let reply = get(&gateway.url("/without/x"), &[]).await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert_eq!(reply.json()["upstream"], "without_cert");
    gateway.shutdown().await;
}
