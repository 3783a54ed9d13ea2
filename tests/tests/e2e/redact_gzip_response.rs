//! A gzip-compressed JSON response is decompressed, redacted and compressed again: the client
//! gets `Content-Encoding: gzip` with a Content-Length that matches the new compressed bytes.
//! A compressed response with nothing to mask is passed on byte for byte.

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use redact_support::{config, gateway, gunzip, gzip};
use serde_json::Value;
use tollgate_tests::{Upstream, get};

#[tokio::test(flavor = "multi_thread")]
async fn gzip_responses_are_redacted_and_recompressed() {
    let personal = gzip(br#"{"email": "dave@example.com", "ssn": "219-09-9999", "plan": "pro"}"#);
    let clean = gzip(br#"{"plan": "pro", "seats": 12}"#);
    let (personal_len, clean_copy) = (personal.len(), clean.clone());
    let upstream = Upstream::start(Arc::new(move |req| {
        let body = if req.uri().path().ends_with("/clean") {
            clean.clone()
        } else {
            personal.clone()
        };
        Box::pin(async move {
            Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .header("etag", "\"v1\"")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        })
    }))
    .await;
    let gateway = gateway(&config(
        &upstream.target(),
        r#"
fields = ["ssn"]
detectors = ["email"]
"#,
        "",
    ))
    .await;

    let reply = get(&gateway.url("/api/account"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str()),
        "Content-Length is that of the recompressed body"
    );
    assert_ne!(reply.body.len(), personal_len);
    assert_eq!(
        reply.header("etag"),
        Some("W/\"v1\""),
        "a redacted body has a weak validator"
    );
    let doc: Value = serde_json::from_slice(&gunzip(&reply.body)).unwrap();
    assert_eq!(doc["email"], "[REDACTED]");
    assert_eq!(doc["ssn"], "[REDACTED]");
    assert_eq!(doc["plan"], "pro");

    let untouched = get(&gateway.url("/api/clean"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(untouched.status, 200);
    assert_eq!(untouched.header("content-encoding"), Some("gzip"));
    assert_eq!(
        &untouched.body[..],
        &clean_copy[..],
        "nothing masked: same bytes"
    );
    assert_eq!(untouched.header("etag"), Some("\"v1\""));
    gateway.shutdown().await;
}
