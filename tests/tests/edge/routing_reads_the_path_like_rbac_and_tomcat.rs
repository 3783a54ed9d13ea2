//! An operator protects `/admin` with an auth chain and leaves `/` open. No spelling of
//! `/admin` reaches the upstream through the open route: `;` parameters (Tomcat, Jetty and
//! Spring serve `/admin;x` as `/admin`), `%3B`, escaped letters, dot-segments and empty
//! segments all route to `/admin` and meet its auth plugin; a route marked
//! `case_insensitive = true` also catches `/SECURE` for a case-insensitive upstream.

use tollgate_tests::{Gateway, Upstream};

use crate::edge_support::{config, raw};

/// SHA-256 of `tg_test_key` (hex).
const KEY_HASH: &str = "bd0edab034bd69aab2e87b0abd396c2612156d394a958310d04348b35f6c224a";

fn gateway_config(upstream: &Upstream) -> String {
    config(
        &upstream.target(),
        &format!(
            r#"
[plugins.auth]
module = "{{plugins}}/auth.wasm"
[plugins.auth.config.api_key]
header = "x-api-key"
[[plugins.auth.config.api_key.keys]]
hash = "{KEY_HASH}"
consumer = "ops"

[[routes]]
name = "open"
path_prefix = "/"
upstream = "echo"

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "echo"
chain = ["auth"]

[[routes]]
name = "secure"
path_prefix = "/secure"
case_insensitive = true
upstream = "echo"
chain = ["auth"]
"#
        ),
    )
}

async fn status(gateway: &Gateway, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
    let reply = raw(gateway.addr, request.as_bytes()).await;
    (reply.status, reply.body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_a_protected_prefix_meets_its_chain() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream)).await;
    for path in [
        "/admin",
        "/admin;x",
        "/admin;jsessionid=0123/users",
        "/admin%3Bx",
        "/admin%3bx/users",
        "/;x/admin",
        "/%61dmin;x",
        "//admin;x",
        "/public/../admin;x",
        "/public/..%2F..;/admin",
        "/secure",
        "/SECURE",
        "/Secure;x/data",
        "/%53ecure",
    ] {
        let (status, body) = status(&gateway, path).await;
        // 401 from the auth plugin, or 400 from the path rule: never the open route's 200.
        assert!(
            status == 401 || status == 400,
            "{path} reached the upstream without auth: {status} {body}"
        );
    }
    // Paths that merely start with the same letters stay on the open route.
    for path in ["/adminx", "/administrator;x", "/public;admin", "/ADMIN"] {
        let (status, body) = status(&gateway, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_gets_the_path_as_normalised_with_its_parameters() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream)).await;
    let (status, body) = status(&gateway, "/files;v=2/a%3bb//c").await;
    assert_eq!(status, 200, "{body}");
    let start = body.find('{').unwrap();
    let echo: serde_json::Value = serde_json::from_str(body[start..].trim()).unwrap();
    assert_eq!(echo["path"], "/files;v=2/a%3Bb/c");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn route_paths_with_parameters_are_refused_at_load() {
    let upstream = Upstream::echo("echo").await;
    let text = config(
        &upstream.target(),
        r#"
[[routes]]
name = "odd"
path_prefix = "/admin;v=1"
upstream = "echo"
"#,
    );
    let error = Gateway::try_start(&text).await.err().unwrap().to_string();
    assert!(error.contains("routing ignores `;` parameters"), "{error}");
}
