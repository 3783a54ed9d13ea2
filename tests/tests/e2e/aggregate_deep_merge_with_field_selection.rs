//! A client gets one object merged from two upstreams' objects, with only the fields the
//! operator selected from each (no password hashes or internal flags leak through).

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use aggregate_support::{Fixed, gateway, text};
use serde_json::json;
use tollgate_tests::get;

#[tokio::test(flavor = "multi_thread")]
async fn selected_fields_of_both_answers_are_merged_into_one_object() {
    let accounts = Fixed::json(json!({
        "id": 7,
        "name": "Ada",
        "password_hash": "$argon2id$secret",
        "address": { "city": "London", "street": "12 Crane Court" },
        "tags": ["a"],
    }))
    .await;
    let billing = Fixed::json(json!({
        "id": 7,
        "plan": { "name": "gold", "internal_margin": 0.4 },
        "address": { "country": "UK" },
        "tags": ["b", "c"],
        "debug": true,
    }))
    .await;
    let gw = gateway(
        &[("accounts", accounts.target()), ("billing", billing.target())],
        &["accounts", "billing"],
        r#"merge = "deep"
backends = [
  { name = "account", upstream = "accounts", path = "/accounts/7", select = ["id", "name", "address.city", "tags"] },
  { name = "billing", upstream = "billing", path = "/billing/7", select = ["plan.name", "address.country", "tags", "missing.field"] },
]"#,
        ("", &[]),
        "",
    )
    .await;

    let reply = get(&gw.url("/customer"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-tollgate-partial"), None);
    assert_eq!(
        reply.json(),
        json!({
            "id": 7,
            "name": "Ada",
            "address": { "city": "London", "country": "UK" },
            "plan": { "name": "gold" },
            // Arrays are not merged: the later backend's value wins.
            "tags": ["b", "c"],
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_is_not_an_object_cannot_be_deep_merged() {
    let accounts = Fixed::json(json!({ "id": 7 })).await;
    let list = Fixed::json(json!([1, 2, 3])).await;
    let gw = gateway(
        &[("accounts", accounts.target()), ("list", list.target())],
        &["accounts", "list"],
        r#"merge = "deep"
backends = [
  { name = "account", upstream = "accounts", path = "/a" },
  { name = "list", upstream = "list", path = "/l", required = false },
]"#,
        ("", &[]),
        "",
    )
    .await;
    let reply = get(&gw.url("/customer"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-tollgate-partial"), Some("true"));
    let body = reply.json();
    assert_eq!(body["id"], 7);
    let error = body["_errors"]["list"]["error"].as_str().unwrap();
    assert!(error.contains("not an object"), "{error}");
}
