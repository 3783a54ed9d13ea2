//! An attacker tries path tricks and ambiguous framing: tricks are normalised or refused with 400
//! before routing, and ambiguous framing never reaches the upstream.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;

use http::{Method, StatusCode};
use proxy_support::*;

async fn gateway() -> Gateway {
    let public = mock_upstream("public").await;
    let admin = mock_upstream("admin").await;
    let config = config(
        vec![upstream("public", &[public]), upstream("admin", &[admin])],
        vec![
            prefix("public", "/api", "public"),
            prefix("admin", "/admin", "admin"),
        ],
    );
    Gateway::start(table(&config, HashMap::new())).await
}

#[tokio::test]
async fn path_tricks_are_normalised_or_refused() {
    let gateway = gateway().await;
    let client = client();
    for (path, upstream, seen) in [
        ("/api/../admin/x", "admin", "/admin/x"),
        ("//admin", "admin", "/admin"),
        ("/%61dmin/", "admin", "/admin/"),
        ("/api/%2e%2e/admin", "admin", "/admin"),
        ("/api/./v1//users", "public", "/api/v1/users"),
    ] {
        let answer = send(&client, request(Method::GET, &gateway.url(path), &[])).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.json()["upstream"], upstream, "{path}");
        assert_eq!(answer.json()["path"], seen, "{path}");
    }
    for path in [
        "/%2e%2e/admin",
        "/api%2f..%2fadmin",
        "/api/%zz",
        "/api/%252e%252e/admin",
        "/api/..;/admin",
        "/api/%00",
    ] {
        let answer = send(&client, request(Method::GET, &gateway.url(path), &[])).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer.json()["error"], "bad_path", "{path}");
    }
}

/// hyper 1.x does not refuse CL+TE: per RFC 9112 §6.3 it lets Transfer-Encoding win, drops
/// Content-Length and closes the connection after the response. So nothing can be smuggled: the
/// upstream never sees both headers, and a request hidden behind the body is never served.
#[tokio::test]
async fn content_length_with_transfer_encoding_cannot_smuggle() {
    let gateway = gateway().await;
    let answer = raw(
        gateway.addr,
        b"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: gw\r\n\r\n",
    )
    .await;
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "one response only: {answer}"
    );
    assert!(
        !answer.contains("\"upstream\":\"admin\""),
        "smuggled request served: {answer}"
    );
    if answer.starts_with("HTTP/1.1 200") {
        assert!(
            !answer.contains("\"content-length\""),
            "upstream saw both framings: {answer}"
        );
        assert!(
            answer.contains("connection: close"),
            "connection kept open: {answer}"
        );
    } else {
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
}

#[tokio::test]
async fn duplicate_content_length_is_400() {
    let gateway = gateway().await;
    let answer = raw(
        gateway.addr,
        b"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        !answer.contains("\"upstream\""),
        "it was forwarded: {answer}"
    );
}

#[tokio::test]
async fn raw_traversal_is_refused() {
    let gateway = gateway().await;
    let answer = raw(
        gateway.addr,
        b"GET /api/../../admin HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("bad_path"), "{answer}");
}
