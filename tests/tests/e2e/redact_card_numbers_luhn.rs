//! Card numbers are recognised by the Luhn check: real card numbers are masked wherever they
//! appear, while order numbers, phone-like digit runs and mistyped cards are left alone.

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use redact_support::{config, fixed, gateway, metrics, redactions};
use tollgate_tests::get;

#[tokio::test(flavor = "multi_thread")]
async fn only_numbers_that_pass_luhn_are_masked() {
    let document = r#"{"payments": [
        {"card": "4111 1111 1111 1111", "order": "1234567812345678"},
        {"card": "4111-1111-1111-1112", "order": 4000056655665556},
        {"memo": "paid with 378282246310005, ref 1234 5678 9012 3456"}
    ]}"#;
    let upstream = fixed(200, &[("content-type", "application/json")], document).await;
    let gateway = gateway(&config(
        &upstream.target(),
        r#"detectors = { card = "partial" }"#,
        "",
    ))
    .await;

    let reply = get(&gateway.url("/api/payments"), &[]).await;
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    let p = &doc["payments"];
    assert_eq!(p[0]["card"], "****1111");
    assert_eq!(p[0]["order"], "1234567812345678", "fails Luhn: not a card");
    assert_eq!(
        p[1]["card"], "4111-1111-1111-1112",
        "one digit off: not a card"
    );
    assert_eq!(
        p[1]["order"], "****5556",
        "a JSON number that is a card is masked too"
    );
    assert_eq!(p[2]["memo"], "paid with ****0005, ref 1234 5678 9012 3456");

    assert_eq!(redactions(&metrics(&gateway).await, "card", "response"), 3);
    gateway.shutdown().await;
}
