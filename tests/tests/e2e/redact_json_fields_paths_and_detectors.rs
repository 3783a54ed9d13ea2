//! An operator masks personal data in an API's JSON responses: by field name, by JSON path and
//! by detectors, each rule with its own mask style (full, partial, keyed hash). The rest of the
//! document comes through as the upstream wrote it, and the redactions are counted per rule in
//! the metrics, never with their values.

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use redact_support::{HASH_KEY, config, expected_hash, fixed, gateway, metrics, redactions};
use serde_json::Value;
use tollgate_tests::get;

const DOCUMENT: &str = r#"{
  "user": {"name": "Alice", "email": "alice@example.com", "SSN": "123-45-6789",
           "phone": "+44 20 7946 0958"},
  "orders": [{"id": 1, "card_number": "4111 1111 1111 1111"},
             {"id": 2, "card_number": 5500005555555559}],
  "notes": "contact bob@example.org from 203.0.113.7",
  "iban": "DE89 3704 0044 0532 0130 00",
  "big": 123456789012345678901234567890
}"#;

#[tokio::test(flavor = "multi_thread")]
async fn json_fields_paths_and_detectors_are_masked_in_their_styles() {
    let upstream = fixed(200, &[("content-type", "application/json")], DOCUMENT).await;
    let gateway = gateway(&config(
        &upstream.target(),
        &format!(
            r#"
hash_key = "{HASH_KEY}"
fields = ["ssn", {{ match = "$.user.email", style = "hash" }}, {{ match = "$..card_number", style = "partial" }}]
detectors = {{ email = "full", ipv4 = "full", iban = "partial", phone = "hash" }}
"#
        ),
        "",
    ))
    .await;

    let first = get(&gateway.url("/api/me"), &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("content-length"),
        Some(first.body.len().to_string().as_str())
    );
    let text = String::from_utf8_lossy(&first.body).into_owned();
    for secret in [
        "alice@example.com",
        "123-45-6789",
        "4111",
        "5500005555555559",
        "bob@",
        "203.0.113.7",
        "DE89",
        "7946",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // The number the upstream wrote is kept digit for digit (no float round trip).
    assert!(text.contains("123456789012345678901234567890"), "{text}");

    let doc: Value = first.json();
    assert_eq!(
        doc["user"]["SSN"], "[REDACTED]",
        "bare names match in any case"
    );
    assert_eq!(doc["user"]["name"], "Alice");
    assert_eq!(doc["user"]["email"], expected_hash("alice@example.com"));
    assert_eq!(doc["user"]["phone"], expected_hash("+442079460958"));
    assert_eq!(doc["orders"][0]["card_number"], "****1111");
    assert_eq!(doc["orders"][1]["card_number"], "****5559");
    assert_eq!(doc["orders"][1]["id"], 2);
    assert_eq!(doc["notes"], "contact [REDACTED] from [REDACTED]");
    assert_eq!(doc["iban"], "****3000");

    // The hash is stable, so masked records stay joinable across responses.
    let second = get(&gateway.url("/api/me"), &[]).await;
    assert_eq!(second.json()["user"]["email"], doc["user"]["email"]);

    let scraped = metrics(&gateway).await;
    assert_eq!(redactions(&scraped, "field:ssn", "response"), 2);
    assert_eq!(redactions(&scraped, "field:$..card_number", "response"), 4);
    assert_eq!(redactions(&scraped, "email", "response"), 2);
    assert_eq!(redactions(&scraped, "ipv4", "response"), 2);
    assert_eq!(redactions(&scraped, "phone", "response"), 2);
    assert!(!scraped.contains("alice@example.com") && !scraped.contains("123-45-6789"));
    gateway.shutdown().await;
}
