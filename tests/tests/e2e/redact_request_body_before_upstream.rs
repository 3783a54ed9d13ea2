//! With `request = true`, personal data in a request body is masked before the upstream sees
//! it (JSON and gzip-compressed JSON alike), and the upstream gets a Content-Length that
//! matches what it receives.

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use http::Method;
use redact_support::{config, gateway, gunzip, gzip, metrics, recording, redactions};
use serde_json::Value;
use tollgate_tests::{client, send};

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_are_redacted_before_the_upstream() {
    let (upstream, seen) = recording().await;
    let gateway = gateway(&config(
        &upstream.target(),
        r#"
fields = [{ match = "$.customer.ssn", style = "partial" }]
detectors = ["email", "card"]
request = true
response = false
"#,
        "",
    ))
    .await;
    let http = client();
    let body = r#"{"customer": {"ssn": "123-45-6789", "email": "frank@example.com"},
                   "payment": {"card": "4111111111111111", "amount": 12.5}}"#;

    let reply = send(
        &http,
        Method::POST,
        &gateway.url("/api/orders"),
        &[("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["ok"], true);

    let compressed = send(
        &http,
        Method::POST,
        &gateway.url("/api/orders"),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        gzip(body.as_bytes()),
    )
    .await;
    assert_eq!(compressed.status, 200);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let (headers, received) = &seen[0];
    assert_eq!(
        headers.get("content-length").and_then(|v| v.to_str().ok()),
        Some(received.len().to_string().as_str())
    );
    let doc: Value = serde_json::from_slice(received).unwrap();
    assert_eq!(doc["customer"]["ssn"], "****6789");
    assert_eq!(doc["customer"]["email"], "[REDACTED]");
    assert_eq!(doc["payment"]["card"], "[REDACTED]");
    assert_eq!(doc["payment"]["amount"], 12.5);

    let (headers, received) = &seen[1];
    assert_eq!(
        headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let doc: Value = serde_json::from_slice(&gunzip(received)).unwrap();
    assert_eq!(doc["customer"]["email"], "[REDACTED]");

    let scraped = metrics(&gateway).await;
    assert_eq!(redactions(&scraped, "email", "request"), 2);
    assert_eq!(redactions(&scraped, "field:$.customer.ssn", "request"), 2);
    assert_eq!(redactions(&scraped, "email", "response"), 0);
    gateway.shutdown().await;
}
