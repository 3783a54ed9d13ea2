//! One optional backend is slow: the client still gets an answer by the aggregation's deadline,
//! with the fast backend's data, a marker where the slow one's would be, and
//! `X-Tollgate-Partial: true`.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use std::time::{Duration, Instant};

use aggregate_support::{Fixed, gateway, text};
use serde_json::json;
use tollgate_tests::get;

#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_bounds_the_wait_and_the_answer_says_it_is_partial() {
    let fast = Fixed::json(json!({ "id": 7, "name": "Ada" })).await;
    let slow = Fixed::slow_json(json!({ "recommendations": [] }), Duration::from_secs(3)).await;
    let gw = gateway(
        &[("users", fast.target()), ("recs", slow.target())],
        &["users", "recs"],
        r#"timeout_ms = 400
backends = [
  { name = "user", upstream = "users", path = "/users/7" },
  { name = "recs", upstream = "recs", path = "/recommendations/7", required = false },
]"#,
        ("", &[]),
        "",
    )
    .await;

    // Warm up (first use of the plugin's pool and connections), then measure.
    let _ = get(&gw.url("/home"), &[]).await;
    let started = Instant::now();
    let reply = get(&gw.url("/home"), &[]).await;
    let took = started.elapsed();

    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-tollgate-partial"), Some("true"));
    let body = reply.json();
    assert_eq!(body["user"], json!({ "id": 7, "name": "Ada" }));
    assert_eq!(body["recs"], json!(null));
    let error = body["_errors"]["recs"]["error"].as_str().unwrap();
    assert!(error.contains("did not answer within 400 ms"), "{error}");
    // Waited for the deadline, and not much longer (the slow backend takes 3 s).
    assert!(
        took >= Duration::from_millis(380) && took < Duration::from_millis(1500),
        "answered after {took:?}"
    );
    eprintln!("partial answer after {took:?} (deadline 400 ms, slow backend 3 s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_backend_deadline_can_be_shorter_than_the_overall_one() {
    let fast = Fixed::json(json!({ "id": 7 })).await;
    let slow = Fixed::slow_json(json!({ "x": 1 }), Duration::from_millis(600)).await;
    let gw = gateway(
        &[("users", fast.target()), ("recs", slow.target())],
        &["users", "recs"],
        r#"timeout_ms = 2000
backends = [
  { name = "user", upstream = "users", path = "/users/7" },
  { name = "recs", upstream = "recs", path = "/r", required = false, timeout_ms = 150 },
]"#,
        ("", &[]),
        "",
    )
    .await;
    let started = Instant::now();
    let reply = get(&gw.url("/home"), &[]).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-tollgate-partial"), Some("true"));
    let error = reply.json()["_errors"]["recs"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("within 150 ms"), "{error}");
    assert!(took < Duration::from_millis(590), "answered after {took:?}");
}
