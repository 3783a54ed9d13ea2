//! Non-JSON text responses go through the detectors as text (including an operator's own
//! pattern); binary content types pass untouched.

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use redact_support::{config, fixed, gateway, metrics, redactions};
use tollgate_tests::{Upstream, get};

const TEXT: &str = "Ticket EMP-004211 opened by carol@example.com (SSN 078-05-1120)\n\
                    from 198.51.100.23 / 2001:db8::7; callback (555) 123-4567.\n";

async fn text_upstream() -> Upstream {
    fixed(200, &[("content-type", "text/plain; charset=utf-8")], TEXT).await
}

#[tokio::test(flavor = "multi_thread")]
async fn text_bodies_are_scanned_by_the_detectors() {
    let text = text_upstream().await;
    let image = fixed(200, &[("content-type", "image/png")], "carol@example.com").await;
    let plugin = r#"
detectors = ["email", "ssn", "ipv4", "ipv6", "phone"]
patterns = [{ name = "employee_id", regex = "EMP-[0-9]{6}", style = "partial" }]
"#;
    let extra = format!(
        r#"
[upstreams.img]
targets = ["{}"]

[[routes]]
name = "img"
path_prefix = "/img"
upstream = "img"
chain = ["redact"]
"#,
        image.target()
    );
    let gateway = gateway(&config(&text.target(), plugin, &extra)).await;

    let reply = get(&gateway.url("/api/ticket"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        std::str::from_utf8(&reply.body).unwrap(),
        "Ticket ****4211 opened by [REDACTED] (SSN [REDACTED])\n\
         from [REDACTED] / [REDACTED]; callback [REDACTED].\n"
    );
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );

    let png = get(&gateway.url("/img/logo.png"), &[]).await;
    assert_eq!(png.status, 200);
    assert_eq!(
        &png.body[..],
        b"carol@example.com",
        "binary types are not rewritten"
    );

    let scraped = metrics(&gateway).await;
    assert_eq!(redactions(&scraped, "employee_id", "response"), 1);
    assert_eq!(redactions(&scraped, "email", "response"), 1);
    assert!(
        scraped.contains("tollgate_custom_redact_skipped{"),
        "{scraped}"
    );
    gateway.shutdown().await;
}
