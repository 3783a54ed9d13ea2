//! An operator exposes the admin API beyond loopback: without a token the gateway refuses to
//! start; with one, requests without it or with a wrong one get 401 JSON and `WWW-Authenticate`,
//! and the right one gets in. A token configured on loopback is required there too.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use tollgate_tests::{Gateway, Upstream, get};

const TOKEN: &str = "s3cret-admin-token-0123456789";

fn config(upstream: &str, admin: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

{admin}

[upstreams.u]
targets = ["{upstream}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "u"
"#
    )
}

/// The admin port on loopback, whatever address it was bound to.
fn loopback(admin: SocketAddr) -> String {
    format!("http://127.0.0.1:{}", admin.port())
}

async fn assert_token_rules(base: &str) {
    let none = get(&format!("{base}/admin/health"), &[]).await;
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(none.json()["error"], "unauthorized");
    assert!(
        none.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer realm=")),
        "{none:?}"
    );
    assert!(
        none.header("content-type")
            .is_some_and(|v| v == "application/json")
    );

    let wrong = get(
        &format!("{base}/admin/health"),
        &[("authorization", "Bearer s3cret-admin-token-012345678X")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "invalid_token");
    assert!(
        wrong
            .header("www-authenticate")
            .is_some_and(|v| v.contains("invalid_token"))
    );
    // The token alone, without the scheme, is not accepted either; nor is another scheme.
    for header in [TOKEN.to_owned(), format!("Basic {TOKEN}")] {
        let reply = get(
            &format!("{base}/admin/health"),
            &[("authorization", &header)],
        )
        .await;
        assert_eq!(reply.status, 401, "{header}");
    }
    // Metrics sit behind the same token.
    assert_eq!(get(&format!("{base}/metrics"), &[]).await.status, 401);

    let bearer = format!("Bearer {TOKEN}");
    let right = get(
        &format!("{base}/admin/health"),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(right.status, 200, "{right:?}");
    assert_eq!(right.json()["status"], "ok");
    // The scheme is case-insensitive (RFC 9110).
    let lower = format!("bearer {TOKEN}");
    let right = get(&format!("{base}/admin/ready"), &[("authorization", &lower)]).await;
    assert_eq!(right.status, 200, "{right:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_a_token_off_loopback() {
    let upstream = Upstream::echo("u").await;

    // 1. Every interface, no token: refused at start, naming the setting.
    let refused =
        Gateway::try_start(&config(&upstream.target(), "[admin]\naddr = \"0.0.0.0:0\"")).await;
    let error = refused
        .err()
        .expect("a public admin listener without a token must not start");
    let message = error.to_string();
    assert!(
        message.contains("admin.addr") && message.contains("token_env"),
        "{message}"
    );

    // 2. Every interface, token from a file: 401 without it or with a wrong one, 200 with it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    let gateway = Gateway::start_in(
        dir,
        &config(
            &upstream.target(),
            "[admin]\naddr = \"0.0.0.0:0\"\ntoken_file = \"admin.token\"",
        ),
    )
    .await;
    let admin = gateway.admin.unwrap();
    assert!(admin.ip().is_unspecified(), "bound to {admin}");
    assert_token_rules(&loopback(admin)).await;
    // Client traffic is not affected by the admin token.
    assert_eq!(get(&gateway.url("/x"), &[]).await.status, 200);
    gateway.shutdown().await;

    // 3. Loopback with a token: required there too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.token"), TOKEN).unwrap();
    let gateway = Gateway::start_in(
        dir,
        &config(
            &upstream.target(),
            "[admin]\naddr = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"",
        ),
    )
    .await;
    assert_token_rules(&loopback(gateway.admin.unwrap())).await;
    gateway.shutdown().await;

    // 4. Loopback without a token: open, as before.
    let gateway = Gateway::start(&config(
        &upstream.target(),
        "[admin]\naddr = \"127.0.0.1:0\"",
    ))
    .await;
    let open = get(
        &format!("{}/admin/health", loopback(gateway.admin.unwrap())),
        &[],
    )
    .await;
    assert_eq!(open.status, 200);
    gateway.shutdown().await;
}
