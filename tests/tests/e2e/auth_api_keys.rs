//! A client calls an API with an API key in a header or a query parameter; the gateway maps it to
//! a consumer, removes it before the upstream, and refuses wrong or missing keys with 401.

#![allow(clippy::unwrap_used)]

use crate::auth_support;

use auth_support::*;
use tollgate_tests::{Gateway, Upstream, get};

const ALICE_KEY: &str = "tg_live_4f9c2a7e1b8d4c6fa0e3b5d7c9e1f2a4";
const BOB_KEY: &str = "tg_live_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";

fn plugin() -> String {
    format!(
        r#"[plugins.auth.config]
realm = "orders"

[plugins.auth.config.api_key]
header = "X-Api-Key"
query = "api_key"

[[plugins.auth.config.api_key.keys]]
hash = "{alice}"
consumer = "alice"
roles = ["orders:read", "orders:write"]
plan = "gold"

[[plugins.auth.config.api_key.keys]]
hash = "sha256:{bob}"
consumer = "bob"
"#,
        alice = key_hash(ALICE_KEY),
        bob = key_hash(BOB_KEY),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_key_in_the_header_is_mapped_and_stripped() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &plugin(), "", &[])).await;

    let reply = get(&gateway.url("/api/orders"), &[("x-api-key", ALICE_KEY)]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let echo = reply.json();
    assert_eq!(echo["headers"]["x-consumer"][0], "alice");
    assert_eq!(echo["headers"]["x-roles"][0], "orders:read,orders:write");
    assert_eq!(echo["headers"]["x-plan"][0], "gold");
    assert_eq!(echo["headers"]["x-auth-method"][0], "api_key");
    assert!(
        echo["headers"].get("x-api-key").is_none(),
        "key reached the upstream"
    );

    // A consumer without plan or roles: empty roles, no plan.
    let reply = get(&gateway.url("/api/orders"), &[("x-api-key", BOB_KEY)]).await;
    let echo = reply.json();
    assert_eq!(echo["headers"]["x-consumer"][0], "bob");
    assert_eq!(echo["headers"]["x-roles"][0], "");
    assert!(echo["headers"].get("x-plan").is_none());
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_key_in_the_query_is_mapped_and_stripped() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &plugin(), "", &[])).await;

    let reply = get(
        &gateway.url(&format!("/api/orders?page=2&api_key={BOB_KEY}&sort=asc")),
        &[],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let echo = reply.json();
    assert_eq!(echo["headers"]["x-consumer"][0], "bob");
    assert_eq!(echo["query"], "page=2&sort=asc", "key left in the query");

    let reply = get(&gateway.url(&format!("/api/orders?api_key={BOB_KEY}")), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["query"], serde_json::Value::Null);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_duplicate_or_missing_keys_are_refused() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &plugin(), "", &[])).await;

    let wrong = "tg_live_4f9c2a7e1b8d4c6fa0e3b5d7c9e1f2a5"; // alice's key, last char changed
    let reply = get(&gateway.url("/api/orders"), &[("x-api-key", wrong)]).await;
    assert_unauthorized(&reply, wrong, "wrong key");
    assert_eq!(reply.json()["message"], "invalid API key");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("ApiKey realm=\"orders\"")
    );

    let reply = get(&gateway.url(&format!("/api/orders?api_key={wrong}")), &[]).await;
    assert_unauthorized(&reply, wrong, "wrong key in query");

    let reply = get(&gateway.url("/api/orders"), &[("x-api-key", "")]).await;
    assert_unauthorized(&reply, "", "empty key");

    // Two keys (header and query): ambiguous, refused even though both are valid.
    let reply = get(
        &gateway.url(&format!("/api/orders?api_key={BOB_KEY}")),
        &[("x-api-key", ALICE_KEY)],
    )
    .await;
    assert_unauthorized(&reply, ALICE_KEY, "two keys");

    let reply = get(&gateway.url("/api/orders"), &[]).await;
    assert_unauthorized(&reply, "", "no key");
    assert_eq!(reply.json()["message"], "missing credentials");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strip_credentials_false_forwards_the_key() {
    let upstream = Upstream::echo("echo").await;
    let config = plugin().replace(
        "realm = \"orders\"",
        "realm = \"orders\"\nstrip_credentials = false",
    );
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &config, "", &[])).await;
    let reply = get(&gateway.url("/api/orders"), &[("x-api-key", ALICE_KEY)]).await;
    assert_eq!(reply.json()["headers"]["x-api-key"][0], ALICE_KEY);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_fails_the_load_naming_the_field() {
    let upstream = Upstream::echo("echo").await;
    let config = plugin().replace(&key_hash(ALICE_KEY), "not-a-hash");
    let err = match Gateway::try_start(&gateway_config(&upstream.target(), &config, "", &[])).await
    {
        Ok(_) => panic!("a bad hash must fail the load"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("api_key.keys[0].hash"), "{err}");
}
