//! When an upstream is down the client gets 502, when it is slow 504, both as JSON naming it.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use proxy_support::*;

#[tokio::test]
async fn upstream_down_is_502() {
    let dead = dead_addr().await;
    let config = config(
        vec![upstream("billing", &[dead])],
        vec![prefix("r", "/", "billing")],
    );
    let gateway = Gateway::start(table(&config, HashMap::new())).await;

    let answer = get(&gateway.url("/invoices")).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let body = answer.json();
    assert_eq!(body["error"], "upstream_unavailable");
    assert_eq!(body["upstream"], "billing");
}

#[tokio::test]
async fn slow_upstream_is_504_within_the_timeout() {
    let slow = mock_upstream("slow").await;
    let mut up = upstream("slow", &[slow]);
    up.request_timeout = Duration::from_millis(200);
    let config = config(vec![up], vec![prefix("r", "/", "slow")]);
    let gateway = Gateway::start(table(&config, HashMap::new())).await;

    let started = Instant::now();
    let answer = send(
        &client(),
        request(Method::GET, &gateway.url("/"), &[("x-delay-ms", "3000")]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let body = answer.json();
    assert_eq!(body["error"], "upstream_timeout");
    assert_eq!(body["upstream"], "slow");
}
