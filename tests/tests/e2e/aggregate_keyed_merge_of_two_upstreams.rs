//! A client calls one route and gets the answers of two upstreams in one JSON document, each
//! under its backend's name.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use aggregate_support::{Fixed, gateway, text};
use serde_json::json;
use tollgate_tests::{Upstream, get};

#[tokio::test(flavor = "multi_thread")]
async fn two_answers_are_placed_under_their_names() {
    let users = Fixed::json(json!({ "id": 7, "name": "Ada" })).await;
    let orders = Fixed::json(json!([{ "id": 1, "total": 30 }, { "id": 2, "total": 12 }])).await;
    let gw = gateway(
        &[("users", users.target()), ("orders", orders.target())],
        &["users", "orders"],
        r#"backends = [
  { name = "user", upstream = "users", path = "/users/7" },
  { name = "orders", upstream = "orders", path = "/orders" },
]"#,
        ("", &[]),
        "",
    )
    .await;

    let reply = get(&gw.url("/profile"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-tollgate-partial"), None);
    assert_eq!(
        reply.json(),
        json!({
            "user": { "id": 7, "name": "Ada" },
            "orders": [{ "id": 1, "total": 30 }, { "id": 2, "total": 12 }],
        })
    );
    assert_eq!((users.hits(), orders.hits()), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_backend_gets_its_own_path_host_and_the_request_id() {
    let users = Upstream::echo("users").await;
    let orders = Upstream::echo("orders").await;
    let gw = gateway(
        &[("users", users.target()), ("orders", orders.target())],
        &["users", "orders"],
        r#"backends = [
  { name = "user", upstream = "users", path = "/users/7" },
  { name = "orders", upstream = "orders", method = "POST", path = "/orders/search" },
]"#,
        ("", &[]),
        "",
    )
    .await;

    let reply = get(&gw.url("/profile"), &[("x-request-id", "req-42")]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let body = reply.json();
    let user = &body["user"];
    assert_eq!(user["upstream"], "users");
    assert_eq!(
        (user["method"].as_str(), user["path"].as_str()),
        (Some("GET"), Some("/users/7"))
    );
    assert_eq!(user["headers"]["host"][0], users.target().as_str());
    assert_eq!(user["headers"]["x-request-id"][0], "req-42");
    assert_eq!(user["headers"]["accept"][0], "application/json");
    let orders_seen = &body["orders"];
    assert_eq!(orders_seen["upstream"], "orders");
    assert_eq!(orders_seen["method"], "POST");
    assert_eq!(orders_seen["path"], "/orders/search");
    assert_eq!(orders_seen["headers"]["host"][0], orders.target().as_str());
}
