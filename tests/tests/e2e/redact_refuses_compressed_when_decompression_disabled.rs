//! Personal data never slips through because of an encoding: with `decompress = false` a gzip
//! response is refused with a 502 JSON error, and an encoding the plugin cannot read (`br`) is
//! refused even when decompression is on. Uncompressed responses are redacted as usual.

#![allow(clippy::unwrap_used)]

use crate::redact_support;

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use redact_support::{config, gateway, gzip, metrics};
use tollgate_tests::{Upstream, get};

#[tokio::test(flavor = "multi_thread")]
async fn compressed_responses_are_refused_not_passed_through() {
    let body = br#"{"email": "erin@example.com"}"#;
    let gz = gzip(body);
    let upstream = Upstream::start(Arc::new(move |req| {
        let path = req.uri().path().to_owned();
        let (encoding, bytes) = if path.ends_with("/gzip") {
            (Some("gzip"), gz.clone())
        } else if path.ends_with("/br") {
            // Not real Brotli: the plugin must refuse on the header alone.
            (Some("br"), b"\x0b\x02\x80erin@example.com\x03".to_vec())
        } else {
            (None, body.to_vec())
        };
        Box::pin(async move {
            let mut builder = Response::builder().header("content-type", "application/json");
            if let Some(e) = encoding {
                builder = builder.header("content-encoding", e);
            }
            builder.body(Full::new(Bytes::from(bytes))).unwrap()
        })
    }))
    .await;
    let extra = r#"
[plugins.redact-inflating]
module = "redact"
config = { detectors = ["email"] }

[[routes]]
name = "inflating"
path_prefix = "/inflating"
upstream = "up"
chain = ["redact-inflating"]
"#;
    let gateway = gateway(&config(
        &upstream.target(),
        r#"
detectors = ["email"]
decompress = false
"#,
        extra,
    ))
    .await;

    let refused = get(&gateway.url("/api/gzip"), &[]).await;
    assert_eq!(refused.status, 502);
    assert_eq!(refused.header("content-type"), Some("application/json"));
    let error = refused.json();
    assert_eq!(error["error"], "redact_unsupported_encoding");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("decompression is disabled"),
        "{error}"
    );
    assert!(!String::from_utf8_lossy(&refused.body).contains("erin"));

    let plain = get(&gateway.url("/api/plain"), &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.json()["email"], "[REDACTED]");

    let brotli = get(&gateway.url("/inflating/br"), &[]).await;
    assert_eq!(brotli.status, 502);
    assert_eq!(brotli.json()["error"], "redact_unsupported_encoding");
    assert!(
        brotli.json()["message"]
            .as_str()
            .unwrap()
            .contains("`br` is not supported")
    );

    // The same gzip body goes through the route that may decompress.
    let inflated = get(&gateway.url("/inflating/gzip"), &[]).await;
    assert_eq!(inflated.status, 200);
    assert_eq!(inflated.header("content-encoding"), Some("gzip"));

    let scraped = metrics(&gateway).await;
    assert!(
        scraped
            .lines()
            .any(|l| l.starts_with("tollgate_custom_redact_refusals{")
                && l.contains("reason=\"redact_unsupported_encoding\"")),
        "{scraped}"
    );
    gateway.shutdown().await;
}
