//! The response body is buffered for `redact`, so the gateway's response body cap applies: a
//! 10 MB response with the cap at 1 MB is answered with a clear 502 JSON error, without
//! buffering the whole of it, and the gateway goes on serving (small responses on the same
//! route, and 10 MB through a route without body plugins, which streams).

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use redact_support::{config, gateway};
use tollgate_tests::{Upstream, get};

const TEN_MB: usize = 10 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn a_response_over_the_cap_is_a_502_and_the_gateway_keeps_serving() {
    // One 10 MB JSON document, made once; each answer shares its bytes.
    let mut big = String::with_capacity(TEN_MB + 64);
    big.push_str("{\"rows\":[");
    while big.len() < TEN_MB {
        big.push_str("{\"email\":\"someone@example.com\",\"n\":12345},");
    }
    big.push_str("{}]}");
    let big = Bytes::from(big);
    let upstream = Upstream::start(Arc::new(move |req| {
        let body = if req.uri().path().ends_with("/big") {
            big.clone()
        } else {
            Bytes::from_static(br#"{"email":"small@example.com"}"#)
        };
        Box::pin(async move {
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(body))
                .unwrap()
        })
    }))
    .await;
    let extra = r#"
[limits]
max_response_body_bytes = 1048576

[[routes]]
name = "plain"
path_prefix = "/plain"
upstream = "up"
"#;
    let gateway = gateway(&config(
        &upstream.target(),
        r#"detectors = ["email"]"#,
        extra,
    ))
    .await;

    let started = Instant::now();
    let refused = get(&gateway.url("/api/big"), &[]).await;
    assert_eq!(refused.status, 502);
    assert_eq!(refused.header("content-type"), Some("application/json"));
    let error = refused.json();
    assert_eq!(error["error"], "upstream_body_too_large");
    assert!(
        error["message"].as_str().unwrap().contains("1048576"),
        "{error}"
    );
    assert!(!String::from_utf8_lossy(&refused.body).contains("someone@"));
    assert!(started.elapsed() < Duration::from_secs(20));

    for _ in 0..3 {
        let small = get(&gateway.url("/api/small"), &[]).await;
        assert_eq!(small.status, 200);
        assert_eq!(small.json()["email"], "[REDACTED]");
    }
    let streamed = get(&gateway.url("/plain/big"), &[]).await;
    assert_eq!(streamed.status, 200);
    assert!(
        streamed.body.len() >= TEN_MB,
        "no cap without a body plugin"
    );

    // And again after the streamed one: the refusal did not poison anything.
    assert_eq!(get(&gateway.url("/api/big"), &[]).await.status, 502);
    assert_eq!(get(&gateway.url("/api/small"), &[]).await.status, 200);
    gateway.shutdown().await;
}
