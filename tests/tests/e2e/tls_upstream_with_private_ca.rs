//! `https://` upstream targets: the gateway verifies the upstream's certificate against the
//! upstream's `ca` (or the public roots when none is set, which refuse a private CA), sends the
//! target host as SNI (or `server_name`), and speaks h2 when `http2 = true` and ALPN agrees.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use tls_support::*;
use tollgate_tests::{Gateway, get};

#[tokio::test(flavor = "multi_thread")]
async fn upstream_tls_is_verified_against_its_ca() {
    let upstream_ca = Ca::new("Upstream CA");
    let upstream = TlsUpstream::start(
        "secure",
        &upstream_ca.server(&["localhost", "backend.test"]),
        None,
    )
    .await;
    let port = upstream.addr.port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("upstream-ca.pem"), upstream_ca.pem()).unwrap();
    let config = format!(
        r#"[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

# SNI and verification use the target's host name.
[upstreams.private]
targets = ["https://localhost:{port}"]
tls = {{ ca = "upstream-ca.pem" }}

# An IP target verified as `backend.test`, over h2.
[upstreams.named]
targets = ["https://127.0.0.1:{port}"]
tls = {{ ca = "upstream-ca.pem", server_name = "backend.test", http2 = true }}

# No `ca`: the public roots, which do not know the private CA.
[upstreams.public]
targets = ["https://localhost:{port}"]

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "private"

[[routes]]
name = "named"
path_prefix = "/named"
upstream = "named"

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "public"
"#
    );
    let gateway = Gateway::start_in(dir, &config).await;

    let reply = get(&gateway.url("/private/a?b=1"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["upstream"], "secure");
    assert_eq!(reply.json()["path"], "/private/a");
    assert_eq!(reply.header("x-seen-sni"), Some("localhost"));
    assert_eq!(reply.header("x-seen-version"), Some("HTTP/1.1"));

    let reply = get(&gateway.url("/named/x"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("x-seen-sni"), Some("backend.test"));
    assert_eq!(reply.header("x-seen-version"), Some("HTTP/2.0"));
    assert_eq!(reply.json()["path"], "/named/x");

    let reply = get(&gateway.url("/public/x"), &[]).await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert_eq!(reply.json()["error"], "upstream_unavailable");
    assert_eq!(reply.json()["upstream"], "public");
    gateway.shutdown().await;
}
