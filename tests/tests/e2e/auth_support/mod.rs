//! Shared helpers for the `auth_*` scenarios: test keys (tests/keys, test-only), tokens signed by
//! the independent `jsonwebtoken` crate, and a gateway config with `auth` followed by a recorder
//! that copies the auth context into request headers the echo upstream shows.

#![allow(dead_code, clippy::unwrap_used)] // each scenario uses a part; a failed unwrap fails the test

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The HMAC secret of the test issuer (64 bytes: long enough for HS512).
pub const SECRET: &str = "test-only-hmac-secret-0123456789-0123456789-0123456789-abcdefghi";
/// The test issuer.
pub const ISSUER: &str = "https://idp.test";
/// The audience the gateway expects.
pub const AUDIENCE: &str = "orders-api";

/// A file under tests/keys (test-only keys, committed on purpose).
pub fn key_file(name: &str) -> String {
    std::fs::read_to_string(tollgate_tests::repo_root().join("tests/keys").join(name)).unwrap()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a valid token for `alice`.
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "roles": ["orders:read", "orders:write"],
        "plan": "gold",
        "iat": now(),
        "exp": now() + 600,
    })
}

/// The signing key (private, test-only) for an algorithm.
pub fn signing_key(alg: Algorithm) -> EncodingKey {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => EncodingKey::from_secret(SECRET.as_bytes()),
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
            EncodingKey::from_rsa_pem(key_file("rsa.key").as_bytes()).unwrap()
        }
        ES256 => EncodingKey::from_ec_pem(key_file("p256.key").as_bytes()).unwrap(),
        ES384 => EncodingKey::from_ec_pem(key_file("p384.key").as_bytes()).unwrap(),
        EdDSA => EncodingKey::from_ed_pem(key_file("ed25519.key").as_bytes()).unwrap(),
    }
}

/// A compact JWS with exactly this header and these claims, signed by `jsonwebtoken`'s crypto
/// with `key` as `alg` (the header's `alg` may say something else: that is the point of some
/// attacks).
pub fn sign_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{signature}")
}

/// A token signed with the test key for `alg`, header `{"alg", "typ": "JWT"}` plus `kid` when
/// given.
pub fn token(alg: Algorithm, claims: &Value, kid: Option<&str>) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &signing_key(alg)).unwrap()
}

/// An unsigned token with this header `alg` (and an empty signature).
pub fn unsigned(alg: &str, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "typ": "JWT" }).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// SHA-256 hex of an API key, the format `tollgate key hash` prints (computed here independently).
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A TOML multi-line literal string.
pub fn literal(text: &str) -> String {
    format!("'''\n{}'''", text)
}

/// A gateway config: one echo upstream `echo` (and optional extra upstreams), plugin `auth`
/// with `auth_config` (TOML lines of `[plugins.auth]` after `module`), a `show` recorder after
/// it, optional `before` plugins, route `/api` with chain `before.. auth show`.
pub fn gateway_config(
    upstream: &str,
    auth_plugin: &str,
    before: &str,
    chain_before: &[&str],
) -> String {
    let mut chain: Vec<String> = chain_before.iter().map(|s| format!("\"{s}\"")).collect();
    chain.push("\"auth\"".into());
    chain.push("\"show\"".into());
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

{before}

[plugins.show]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "show", context_to_header = {{ consumer = "x-consumer", roles = "x-roles", plan = "x-plan", "auth.method" = "x-auth-method" }} }}

[plugins.auth]
module = "{{plugins}}/auth.wasm"
{auth_plugin}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = [{chain}]
"#,
        chain = chain.join(", ")
    )
}

/// Assert a 401 from the auth plugin: JSON error body that does not contain `credential`.
pub fn assert_unauthorized(reply: &tollgate_tests::Reply, credential: &str, why: &str) {
    assert_eq!(
        reply.status,
        401,
        "{why}: expected 401, got {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["error"], "unauthorized", "{why}");
    assert!(body["message"].is_string(), "{why}");
    if !credential.is_empty() {
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            !text.contains(credential),
            "{why}: the body echoes the credential"
        );
    }
    assert!(
        reply.header("www-authenticate").is_some()
            || reply.headers.contains_key("www-authenticate"),
        "{why}: no WWW-Authenticate"
    );
}

/// Every algorithm, one issuer, typed keys without `kid` (the plugin picks keys by family).
pub fn jwt_plugin() -> String {
    format!(
        r#"timeout_ms = 250

[plugins.auth.config]
realm = "orders"

[[plugins.auth.config.jwt.issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]

[[plugins.auth.config.jwt.issuers.keys]]
secret = "{SECRET}"

[[plugins.auth.config.jwt.issuers.keys]]
pem = {rsa}

[[plugins.auth.config.jwt.issuers.keys]]
pem = {p256}

[[plugins.auth.config.jwt.issuers.keys]]
pem = {p384}

[[plugins.auth.config.jwt.issuers.keys]]
pem = {ed}
"#,
        rsa = literal(&key_file("rsa.pub")),
        p256 = literal(&key_file("p256.pub")),
        p384 = literal(&key_file("p384.pub")),
        ed = literal(&key_file("ed25519.pub")),
    )
}
