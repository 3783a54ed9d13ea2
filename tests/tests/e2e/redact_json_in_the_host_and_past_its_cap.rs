//! `redact` hands JSON documents to the gateway's native copy of its engine (contract 0.2
//! `redaction`), which takes documents of up to 1 MiB; a larger one the plugin masks itself in
//! Wasm. Either way the client gets the same masks: each e-mail address hashed with the
//! operator's key (checked against HMAC-SHA256 written out from RFC 2104), each card number
//! cut to its last four digits, every value counted per rule, and nothing of the originals.
//! A response body masked where the gateway holds it follows the plugin's rules as before: the
//! digest headers go and a strong ETag becomes weak (the gateway sees to both), an empty or
//! clean body and a 204 or 304 are left alone, and a broken document labelled JSON is masked
//! as text or refused, as `invalid_json` says.

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use redact_support::{HASH_KEY, config, expected_hash, gateway, metrics, redactions};
use serde_json::Value;
use tollgate_tests::{Upstream, get};

/// A JSON array of `rows` customers, each with its own address and the same card number.
fn customers(rows: usize) -> String {
    let rows: Vec<String> = (0..rows)
        .map(|i| {
            format!(
                r#"{{"id":{i},"email":"customer.{i}@example.com","card":"4111 1111 1111 1111","note":"deliver before noon"}}"#
            )
        })
        .collect();
    format!(r#"{{"customers":[{}]}}"#, rows.join(","))
}

/// Every row masked: its own address's hash, the card's last four digits, the rest untouched.
fn assert_masked(body: &Bytes, rows: usize) {
    let text = String::from_utf8_lossy(body);
    assert!(!text.contains("@example.com"), "an address got through");
    assert!(!text.contains("4111 1111"), "a card number got through");
    let doc: Value = serde_json::from_slice(body).unwrap();
    let list = doc["customers"].as_array().unwrap();
    assert_eq!(list.len(), rows);
    for (i, row) in list.iter().enumerate() {
        assert_eq!(row["id"], i);
        assert_eq!(
            row["email"],
            expected_hash(&format!("customer.{i}@example.com"))
        );
        assert_eq!(row["card"], "****1111");
        assert_eq!(row["note"], "deliver before noon");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_is_masked_the_same_in_the_host_and_past_its_one_mib_cap() {
    // 100 rows: 10 KB, masked by the host. 12,000 rows: about 1.2 MB, masked by the plugin.
    const SMALL: usize = 100;
    const LARGE: usize = 12_000;
    let small = Bytes::from(customers(SMALL));
    let large = Bytes::from(customers(LARGE));
    assert!(
        large.len() > 1 << 20,
        "the large document must pass the host's cap"
    );
    let upstream = Upstream::start(Arc::new(move |req| {
        let body = if req.uri().path().ends_with("/large") {
            large.clone()
        } else {
            small.clone()
        };
        Box::pin(async move {
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(body))
                .unwrap()
        })
    }))
    .await;
    let plugin = format!(
        r#"fields = [{{ match = "$..email", style = "hash" }}]
detectors = {{ card = "partial" }}
hash_key = "{HASH_KEY}""#
    );
    let extra = "[limits]\nmax_response_body_bytes = 4194304\n";
    let gateway = gateway(&config(&upstream.target(), &plugin, extra)).await;

    for _ in 0..3 {
        let reply = get(&gateway.url("/api/small"), &[]).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_masked(&reply.body, SMALL);
    }
    let reply = get(&gateway.url("/api/large"), &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_masked(&reply.body, LARGE);

    let scraped = metrics(&gateway).await;
    let expected = (3 * SMALL + LARGE) as u64;
    assert_eq!(redactions(&scraped, "field:$..email", "response"), expected);
    assert_eq!(redactions(&scraped, "card", "response"), expected);
}

/// An upstream that answers `/api/<name>` with the JSON body of that name, an `ETag` and a
/// `Content-MD5`; `/api/not-modified` and `/api/no-content` answer 304 and 204, with the same
/// headers and no body.
async fn documents(bodies: &'static [(&'static str, &'static str)]) -> Upstream {
    Upstream::start(Arc::new(move |req| {
        let name = req.uri().path().trim_start_matches("/api/").to_owned();
        let body = bodies
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, b)| b);
        let status = match name.as_str() {
            "not-modified" => 304,
            "no-content" => 204,
            _ => 200,
        };
        Box::pin(async move {
            Response::builder()
                .status(status)
                .header("content-type", "application/json; charset=utf-8")
                .header("etag", "\"v7\"")
                .header("content-md5", "Q2hlY2sgSW50ZWdyaXR5IQ==")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap()
        })
    }))
    .await
}

const BODIES: &[(&str, &str)] = &[
    (
        "personal",
        r#"{"user": {"email": "alice@example.com", "plan": "pro"}}"#,
    ),
    ("clean", r#"{"user": {"plan": "pro"}}"#),
    ("empty", ""),
    ("broken", r#"{"note": "write to bob@example.org", "#),
];

#[tokio::test(flavor = "multi_thread")]
async fn json_masked_in_the_host_keeps_the_plugins_rules_for_headers_and_broken_documents() {
    let upstream = documents(BODIES).await;
    let gateway = gateway(&config(&upstream.target(), r#"detectors = ["email"]"#, "")).await;

    // Masked: the digest no longer describes the body, and the ETag becomes weak.
    let masked = get(&gateway.url("/api/personal"), &[]).await;
    assert_eq!(masked.status, 200);
    assert_eq!(
        masked.json(),
        serde_json::json!({"user": {"email": "[REDACTED]", "plan": "pro"}})
    );
    assert_eq!(masked.header("etag"), Some("W/\"v7\""));
    assert_eq!(masked.header("content-md5"), None);

    // Nothing to mask, or nothing at all: the answer is the upstream's, headers included.
    for name in ["clean", "empty"] {
        let reply = get(&gateway.url(&format!("/api/{name}")), &[]).await;
        assert_eq!(reply.status, 200, "{name}");
        let expected = BODIES.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(reply.body, expected.as_bytes(), "{name}");
        assert_eq!(reply.header("etag"), Some("\"v7\""), "{name}");
        assert!(reply.header("content-md5").is_some(), "{name}");
    }

    // A status without a body is passed on as it came, its validators untouched.
    for (name, status) in [("not-modified", 304), ("no-content", 204)] {
        let reply = get(&gateway.url(&format!("/api/{name}")), &[]).await;
        assert_eq!(reply.status, status, "{name}");
        assert!(reply.body.is_empty(), "{name}");
        assert_eq!(reply.header("etag"), Some("\"v7\""), "{name}");
        assert!(reply.header("content-md5").is_some(), "{name}");
    }

    // Labelled JSON but broken: with the default `invalid_json = "text"` it is masked as text.
    let broken = get(&gateway.url("/api/broken"), &[]).await;
    assert_eq!(broken.status, 200);
    assert_eq!(broken.body, &br#"{"note": "write to [REDACTED]", "#[..]);
    let scraped = metrics(&gateway).await;
    assert_eq!(redactions(&scraped, "email", "response"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_json_is_refused_when_the_config_says_so() {
    let upstream = documents(BODIES).await;
    let plugin = "detectors = [\"email\"]\ninvalid_json = \"refuse\"";
    let gateway = gateway(&config(&upstream.target(), plugin, "")).await;

    let refused = get(&gateway.url("/api/broken"), &[]).await;
    assert_eq!(refused.status, 502);
    let error = refused.json();
    assert_eq!(error["error"], "redact_invalid_json", "{error}");
    assert!(!String::from_utf8_lossy(&refused.body).contains("bob@"));

    let masked = get(&gateway.url("/api/personal"), &[]).await;
    assert_eq!(masked.status, 200);
    assert_eq!(masked.json()["user"]["email"], "[REDACTED]");
}
