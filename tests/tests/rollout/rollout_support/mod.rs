//! The base config of the rollout scenarios (admin listener, one echo upstream), admin API
//! helpers, and module signing with a key of the test's own.

use std::path::Path;

use bytes::Bytes;
use http::Method;
use tollgate_tests::{Reply, client, get, send};

/// `[gateway]` (with `gateway_extra` lines), a listener, `[admin]` and upstream `up` at
/// `target`, followed by `rest` (plugins, routes).
pub fn config(gateway_extra: &str, target: &str, rest: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false
{gateway_extra}

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.up]
targets = ["{target}"]

{rest}
"#
    )
}

/// `GET /admin/plugins` as JSON.
pub async fn admin_plugins(admin: std::net::SocketAddr) -> serde_json::Value {
    let reply = get(&format!("http://{admin}/admin/plugins"), &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The `/admin/plugins` entry of plugin `name`.
pub async fn admin_plugin(admin: std::net::SocketAddr, name: &str) -> serde_json::Value {
    let all = admin_plugins(admin).await;
    all["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no plugin `{name}` in {all}"))
}

/// `POST http://ADMIN{path}` with an empty body.
pub async fn admin_post(admin: std::net::SocketAddr, path: &str) -> Reply {
    send(
        &client(),
        Method::POST,
        &format!("http://{admin}{path}"),
        &[],
        Bytes::new(),
    )
    .await
}

/// Write `module.sig` for `module`, signed with the PKCS#8 PEM `private` key.
pub fn sign(private: &str, module: &Path) {
    let bytes = std::fs::read(module).unwrap();
    let file = tollgate::signing::sign(private, &bytes).unwrap();
    std::fs::write(
        tollgate::signing::signature_path(module),
        serde_json::to_string(&file).unwrap(),
    )
    .unwrap();
}
