//! The backends' requests are built from the incoming request: a path parameter of the
//! aggregation's pattern, query parameters, a header and the consumer an earlier plugin
//! identified. Values are encoded where they land, so they cannot add segments or parameters.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use aggregate_support::{gateway, text};
use tollgate_tests::{Gateway, Upstream, get};

/// A `recorder` before the aggregation sets the consumer, as an auth plugin would.
const IDENTIFY: &str = r#"[plugins.identify]
module = "{fixtures}/recorder.wasm"
config = { name = "identify", set_context = { consumer = "alice" } }
"#;

async fn start(users: &Upstream, orders: &Upstream) -> Gateway {
    gateway(
        &[("users", users.target()), ("orders", orders.target())],
        &["users", "orders"],
        r#"path = "/accounts/{id}"
[[plugins.agg.config.backends]]
name = "user"
upstream = "users"
path = "/users/{path.id}"
query = { fields = "{query.fields|all}", by = "{consumer}" }
headers = { "x-caller" = "{consumer}", "x-trace" = "{header.x-trace|none}" }

[[plugins.agg.config.backends]]
name = "orders"
upstream = "orders"
path = "/customers/{consumer}/orders"
query = { page = "{query.page}", owner = "{path.id}" }
"#,
        (IDENTIFY, &["identify"]),
        "",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn values_come_from_path_query_header_and_consumer() {
    let users = Upstream::echo("users").await;
    let orders = Upstream::echo("orders").await;
    let gw = start(&users, &orders).await;

    let reply = get(
        &gw.url("/accounts/42?fields=name,email&page=2"),
        &[("x-trace", "t-1")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let body = reply.json();
    let user = &body["user"];
    assert_eq!(user["path"], "/users/42");
    assert_eq!(user["query"], "by=alice&fields=name%2Cemail");
    assert_eq!(user["headers"]["x-caller"][0], "alice");
    assert_eq!(user["headers"]["x-trace"][0], "t-1");
    let orders_seen = &body["orders"];
    assert_eq!(orders_seen["path"], "/customers/alice/orders");
    assert_eq!(orders_seen["query"], "owner=42&page=2");

    // Defaults fill what the request leaves out.
    let reply = get(&gw.url("/accounts/43?page=1"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let user = &reply.json()["user"];
    assert_eq!(user["query"], "by=alice&fields=all");
    assert_eq!(user["headers"]["x-trace"][0], "none");
}

#[tokio::test(flavor = "multi_thread")]
async fn values_cannot_change_the_shape_of_the_backend_request() {
    let users = Upstream::echo("users").await;
    let orders = Upstream::echo("orders").await;
    let gw = start(&users, &orders).await;

    // `&`, `=`, `#` and `/` in a query value stay inside that one value.
    let reply = get(
        &gw.url("/accounts/a%20b?fields=x%26admin%3Dtrue%23frag&page=..%2F..%2Fadmin"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let body = reply.json();
    assert_eq!(body["user"]["path"], "/users/a%20b");
    assert_eq!(
        body["user"]["query"],
        "by=alice&fields=x%26admin%3Dtrue%23frag"
    );
    assert_eq!(body["orders"]["query"], "owner=a%20b&page=..%2F..%2Fadmin");
    assert_eq!(body["orders"]["path"], "/customers/alice/orders");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_value_or_an_unmatched_path_is_a_client_error() {
    let users = Upstream::echo("users").await;
    let orders = Upstream::echo("orders").await;
    let gw = start(&users, &orders).await;

    let reply = get(&gw.url("/accounts/42"), &[]).await;
    assert_eq!(reply.status, 400, "{}", text(&reply));
    let body = reply.json();
    assert_eq!(body["error"], "missing query parameter `page`");
    assert_eq!(body["backend"], "orders");

    let reply = get(&gw.url("/accounts/42/extra?page=1"), &[]).await;
    assert_eq!(reply.status, 404, "{}", text(&reply));
    assert_eq!(reply.json()["error"], "no aggregation matches this path");
}
