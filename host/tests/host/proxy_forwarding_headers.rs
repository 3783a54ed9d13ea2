//! What the upstream receives: hop-by-hop headers gone, the gateway's own X-Forwarded-* set (and
//! not removable through `Connection`), a request id, and the original Host.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;

use http::{Method, StatusCode};
use proxy_support::*;

#[tokio::test]
async fn upstream_gets_clean_forwarding_headers() {
    let up = mock_upstream("up").await;
    let config = config(vec![upstream("up", &[up])], vec![prefix("r", "/", "up")]);
    let gateway = Gateway::start(table(&config, HashMap::new())).await;

    let answer = send(
        &client(),
        request(
            Method::GET,
            &gateway.url("/x"),
            &[
                ("host", "shop.example:8443"),
                (
                    "connection",
                    "keep-alive, x-forwarded-for, x-forwarded-host, x-secret",
                ),
                ("keep-alive", "timeout=5"),
                ("proxy-authorization", "Basic c2VjcmV0"),
                ("te", "trailers"),
                ("x-secret", "drop me"),
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-proto", "https"),
                ("forwarded", "for=6.6.6.6"),
                ("x-request-id", "req-42"),
                ("x-kept", "yes"),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let headers = &answer.json()["headers"];
    for gone in [
        "connection",
        "keep-alive",
        "proxy-authorization",
        "te",
        "x-secret",
        "forwarded",
    ] {
        assert!(
            headers.get(gone).is_none(),
            "{gone} reached the upstream: {headers}"
        );
    }
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.1",
        "the peer, not the client's claim"
    );
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "shop.example:8443");
    assert_eq!(headers["host"], "shop.example:8443");
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(headers["x-kept"], "yes");

    // The upstream's hop-by-hop headers do not reach the client either.
    assert!(answer.headers.get("keep-alive").is_none());
    assert_eq!(answer.headers["x-upstream"], "up");
    assert_eq!(answer.headers["x-request-id"], "req-42");
}

#[tokio::test]
async fn a_request_id_is_generated_when_missing() {
    let up = mock_upstream("up").await;
    let config = config(vec![upstream("up", &[up])], vec![prefix("r", "/", "up")]);
    let gateway = Gateway::start(table(&config, HashMap::new())).await;

    let answer = get(&gateway.url("/")).await;
    let sent = answer.json()["headers"]["x-request-id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sent.len(), 32);
    assert!(sent.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(answer.headers["x-request-id"], sent.as_str());
}

#[tokio::test]
async fn connection_cannot_remove_the_gateways_headers() {
    let up = mock_upstream("up").await;
    let config = config(vec![upstream("up", &[up])], vec![prefix("r", "/", "up")]);
    let gateway = Gateway::start(table(&config, HashMap::new())).await;

    let answer = send(
        &client(),
        request(
            Method::GET,
            &gateway.url("/x"),
            &[
                (
                    "connection",
                    "x-forwarded-for, x-request-id, x-forwarded-proto",
                ),
                ("x-forwarded-for", "6.6.6.6"),
                ("x-request-id", "req-7"),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let headers = &answer.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{headers}");
    assert_eq!(headers["x-forwarded-proto"], "http", "{headers}");
    let id = headers["x-request-id"].as_str().unwrap_or_default();
    assert!(
        !id.is_empty(),
        "the gateway's request id was removed: {headers}"
    );
    assert_eq!(answer.headers["x-request-id"], id);
}
