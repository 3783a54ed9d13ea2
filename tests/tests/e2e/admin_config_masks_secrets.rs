//! An operator reads the active config from `GET /admin/config`: routes, chains, upstreams and
//! each plugin's config are there, and every secret (API key hashes, JWT secrets, PEM keys,
//! password hashes, the admin token, the Redis password, each Redis Cluster node's password) is
//! replaced by `"***"`.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Upstream, dead_port, get};

const KEY_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const JWT_SECRET: &str = "jwt-hmac-secret-that-must-not-leak";
const REDIS_PASSWORD: &str = "redis-password-that-must-not-leak";
const CONTEXT_TOKEN: &str = "context-token-that-must-not-leak";
const ADMIN_TOKEN: &str = "admin-token-that-must-not-leak";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_config_shows_the_config_with_secrets_masked() {
    let upstream = Upstream::echo("u").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.token"), ADMIN_TOKEN).unwrap();
    let config = format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
plugin_dir = "{{plugins}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"
token_file = "admin.token"

[state]
backend = "redis"
url = "redis://ops:{REDIS_PASSWORD}@127.0.0.1:6379/0"
key_prefix = "tollgate-test-admin-config:"

[upstreams.u]
targets = ["{target}"]

[plugins.auth]
module = "auth"

[plugins.auth.config]
methods = ["api_key", "jwt"]

[plugins.auth.config.api_key]
header = "x-api-key"
keys = [{{ hash = "{KEY_HASH}", consumer = "ci-bot", roles = ["deploy"] }}]

[[plugins.auth.config.jwt.issuers]]
issuer = "https://idp.example.com"
algorithms = ["HS256"]
keys = [{{ kid = "k1", secret = "{JWT_SECRET}" }}]

[plugins.rec]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "rec", set_context = {{ upstream_token = "{CONTEXT_TOKEN}", tier = "gold" }} }}

[[routes]]
name = "api"
path_prefix = "/api"
methods = ["GET", "POST"]
upstream = "u"
chain = ["auth", "rec"]
"#,
        target = upstream.target()
    );
    let gateway = Gateway::start_in(dir, &config).await;
    let admin = gateway.admin.unwrap();
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let reply = get(
        &format!("http://{admin}/admin/config"),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    for secret in [
        KEY_HASH,
        JWT_SECRET,
        REDIS_PASSWORD,
        CONTEXT_TOKEN,
        ADMIN_TOKEN,
    ] {
        assert!(!text.contains(secret), "`{secret}` leaked: {text}");
    }
    let body = reply.json();

    // Routes and chains.
    let route = &body["routes"][0];
    assert_eq!(route["name"], "api");
    assert_eq!(route["path_prefix"], "/api");
    assert_eq!(route["upstream"], "u");
    assert_eq!(route["chain"], serde_json::json!(["auth", "rec"]));
    assert_eq!(route["methods"], serde_json::json!(["GET", "POST"]));
    assert_eq!(
        body["upstreams"]["u"]["targets"][0],
        upstream.target().as_str()
    );

    // Plugin configs: secrets masked, names and settings kept.
    let auth = &body["plugins"]["auth"]["config"];
    assert_eq!(auth["methods"], serde_json::json!(["api_key", "jwt"]));
    assert_eq!(auth["api_key"]["header"], "x-api-key");
    assert_eq!(auth["api_key"]["keys"][0]["hash"], "***");
    assert_eq!(auth["api_key"]["keys"][0]["consumer"], "ci-bot");
    let issuer = &auth["jwt"]["issuers"][0];
    assert_eq!(issuer["issuer"], "https://idp.example.com");
    assert_eq!(issuer["keys"][0]["kid"], "k1");
    assert_eq!(issuer["keys"][0]["secret"], "***");
    let rec = &body["plugins"]["rec"]["config"];
    assert_eq!(rec["set_context"]["upstream_token"], "***");
    assert_eq!(rec["set_context"]["tier"], "gold");
    assert_eq!(body["plugins"]["rec"]["on_error"], "fail-closed");

    // The state URL keeps its user and host, not its password; the admin token is masked.
    assert_eq!(
        body["state"]["url"], "redis://ops:***@127.0.0.1:6379/0",
        "{body}"
    );
    assert_eq!(body["admin"]["token"], "***");
    // The write-behind interval shows, at its default.
    assert_eq!(body["state"]["write_behind_ms"], 100, "{body}");
    gateway.shutdown().await;
}

/// A Redis Cluster backend: every seed node's URL keeps its user and host, not its password. (The
/// gateway connects lazily, so no cluster needs to run for this.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_config_masks_each_redis_cluster_node_password() {
    let upstream = Upstream::echo("u").await;
    let (a, b) = (dead_port().await, dead_port().await);
    let config = format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[state]
backend = "redis-cluster"
nodes = ["redis://ops:{REDIS_PASSWORD}@{a}", "redis://ops:{REDIS_PASSWORD}@{b}"]
timeout_ms = 200
write_behind_ms = 250

[upstreams.u]
targets = ["{target}"]

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "u"
"#,
        target = upstream.target()
    );
    let gateway = Gateway::start(&config).await;
    let admin = gateway.admin.unwrap();
    let reply = get(&format!("http://{admin}/admin/config"), &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(
        !text.contains(REDIS_PASSWORD),
        "the password leaked: {text}"
    );
    let state = &reply.json()["state"];
    assert_eq!(state["backend"], "redis-cluster", "{state}");
    assert_eq!(
        state["nodes"],
        serde_json::json!([
            format!("redis://ops:***@{a}"),
            format!("redis://ops:***@{b}")
        ]),
        "{state}"
    );
    assert_eq!(state["timeout_ms"], 200);
    assert_eq!(state["write_behind_ms"], 250);
    gateway.shutdown().await;
}
