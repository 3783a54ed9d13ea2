//! A backend the answer cannot do without fails: the client gets 502 with a JSON body naming
//! it, whatever the other backends said.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use std::time::{Duration, Instant};

use aggregate_support::{Fixed, gateway, text};
use serde_json::json;
use tollgate_tests::{dead_port, get};

#[tokio::test(flavor = "multi_thread")]
async fn a_required_backend_answering_500_gives_502_naming_it() {
    let users = Fixed::start(
        500,
        "application/json",
        r#"{"oops":1}"#.into(),
        Duration::ZERO,
    )
    .await;
    let orders = Fixed::json(json!([1, 2])).await;
    let gw = gateway(
        &[("users", users.target()), ("orders", orders.target())],
        &["users", "orders"],
        r#"backends = [
  { name = "user", upstream = "users", path = "/users/7", required = true },
  { name = "orders", upstream = "orders", path = "/orders", required = false },
]"#,
        ("", &[]),
        "",
    )
    .await;

    let reply = get(&gw.url("/profile"), &[]).await;
    assert_eq!(reply.status, 502, "{}", text(&reply));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({
            "error": "required backend `user` failed",
            "backend": "user",
            "detail": "upstream `users` answered 500",
            "status": 500,
            "failed": ["user"],
        })
    );
    // The optional one was still asked (concurrently), but its answer is not sent.
    assert_eq!(orders.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_required_backend_that_is_down_gives_502_quickly() {
    let orders = Fixed::json(json!([1, 2])).await;
    let down = dead_port().await;
    let gw = gateway(
        &[("orders", orders.target()), ("users", down.to_string())],
        &["users", "orders"],
        r#"backends = [
  { name = "orders", upstream = "orders", path = "/orders", required = false },
  { name = "user", upstream = "users", path = "/users/7" },
]"#,
        ("", &[]),
        "",
    )
    .await;

    let started = Instant::now();
    let reply = get(&gw.url("/profile"), &[]).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, 502, "{}", text(&reply));
    let body = reply.json();
    assert_eq!(body["backend"], "user");
    assert_eq!(body["detail"], "upstream `users` is unreachable");
    assert_eq!(body.get("status"), None);
}
