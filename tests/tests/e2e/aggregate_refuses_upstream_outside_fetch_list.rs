//! An aggregation configured to call an upstream that its plugin entry's `fetch` list does not
//! name is refused by the gateway: that upstream never sees a request.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use aggregate_support::{Fixed, gateway, text};
use serde_json::json;
use tollgate_tests::get;

#[tokio::test(flavor = "multi_thread")]
async fn the_unlisted_upstream_is_never_called() {
    let users = Fixed::json(json!({ "id": 7 })).await;
    let secrets = Fixed::json(json!({ "api_token": "s3cr3t" })).await;
    let config = |required: bool| {
        format!(
            r#"backends = [
  {{ name = "user", upstream = "users", path = "/users/7" }},
  {{ name = "secrets", upstream = "secrets", path = "/all", required = {required} }},
]"#
        )
    };
    // `secrets` is a configured upstream (a route could use it), but not in `fetch`.
    let upstreams = [("users", users.target()), ("secrets", secrets.target())];

    let gw = gateway(&upstreams, &["users"], &config(true), ("", &[]), "").await;
    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, 502, "{}", text(&reply));
    let body = reply.json();
    assert_eq!(body["backend"], "secrets");
    assert_eq!(
        body["detail"],
        "upstream `secrets` is not in this plugin's `fetch` list"
    );
    assert!(!text(&reply).contains("s3cr3t"));

    let gw = gateway(&upstreams, &["users"], &config(false), ("", &[]), "").await;
    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-tollgate-partial"), Some("true"));
    assert_eq!(reply.json()["user"], json!({ "id": 7 }));
    assert!(!text(&reply).contains("s3cr3t"));

    assert_eq!(secrets.hits(), 0);
    assert_eq!(users.hits(), 2);
}
