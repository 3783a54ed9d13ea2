//! Retries only for idempotent methods: with one of two targets down (and ejection off), every
//! GET succeeds through a retry on the other target, while a POST that hit the dead target is
//! not retried and the client sees 502 `upstream_unavailable`.

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use bytes::Bytes;
use http::{Method, StatusCode};
use tollgate_tests::{Gateway, client, dead_port, send};
use upstream_support::{Target, config, served_by, spread, upstreams};

#[tokio::test(flavor = "multi_thread")]
async fn get_is_retried_post_is_not() {
    let alive = Target::start("alive").await;
    let dead = dead_port().await;
    let gateway = Gateway::start(&config(&format!(
        r#"targets = ["{}", "{dead}"]
retries = 1
retry_budget_min_per_sec = 100
[upstreams.app.passive]
max_failures = 0"#,
        alive.target()
    )))
    .await;

    let client = client();
    let mut posts = Vec::new();
    for i in 0..10 {
        let reply = send(
            &client,
            Method::POST,
            &gateway.url("/orders"),
            &[("content-type", "application/json")],
            Bytes::from(format!("{{\"n\":{i}}}")),
        )
        .await;
        if reply.status == StatusCode::BAD_GATEWAY {
            assert_eq!(reply.json()["error"], "upstream_unavailable");
        }
        posts.push(served_by(&reply));
    }
    // Round-robin over two targets: every other POST went to the dead one and was not retried.
    let failed = posts.iter().filter(|s| s.starts_with("502")).count();
    assert_eq!(failed, 5, "{posts:?}");
    assert_eq!(posts.iter().filter(|s| *s == "alive").count(), 5);

    let gets = spread(&gateway, "/orders", 10).await;
    assert!(gets.iter().all(|s| s == "alive"), "{gets:?}");
    // Some GETs went to the dead target first; each of those was retried, none failed.
    let report = upstreams(&gateway).await;
    let retried = report["upstreams"]["app"]["retries"]["attempted"]
        .as_u64()
        .unwrap();
    assert!((1..=10).contains(&retried), "{report}");
    gateway.shutdown().await;
}
