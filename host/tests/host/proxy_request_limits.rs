//! An operator's request limits: too many or too large headers get 431, a body over the limit
//! gets 413, whether declared with Content-Length or streamed chunked.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use proxy_support::*;
use tollgate::chain::Chain;
use tollgate::config::Limits;

async fn gateway(buffering_chain: bool) -> Gateway {
    let up = mock_upstream("up").await;
    let mut route = prefix("r", "/", "up");
    let mut chains: HashMap<String, Arc<dyn Chain>> = HashMap::new();
    if buffering_chain {
        route.chain = vec!["reader".into()];
        let mut chain = TestChain::new(vec![Step::Tag("reader")]);
        chain.needs_request_body = true;
        chains.insert("r".into(), Arc::new(chain));
    }
    let mut config = config(vec![upstream("up", &[up])], vec![route]);
    config.limits = Limits {
        max_header_count: 10,
        max_header_bytes: 1024,
        max_body_bytes: 100,
        ..Limits::default()
    };
    Gateway::start(table(&config, chains)).await
}

#[tokio::test]
async fn too_many_headers_is_431() {
    let gateway = gateway(false).await;
    let names: Vec<String> = (0..15).map(|i| format!("x-h{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let answer = send(&client(), request(Method::GET, &gateway.url("/"), &headers)).await;
    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(answer.json()["error"], "too_many_headers");
}

#[tokio::test]
async fn too_large_headers_is_431() {
    let gateway = gateway(false).await;
    let big = "x".repeat(2000);
    let answer = send(
        &client(),
        request(Method::GET, &gateway.url("/"), &[("x-big", &big)]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(answer.json()["error"], "headers_too_large");
}

#[tokio::test]
async fn content_length_over_the_limit_is_413() {
    let gateway = gateway(false).await;
    let mut req = request(Method::POST, &gateway.url("/"), &[]);
    *req.body_mut() = Full::new(Bytes::from(vec![b'a'; 200]));
    let answer = send(&client(), req).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["error"], "body_too_large");

    let mut within = request(Method::POST, &gateway.url("/"), &[]);
    *within.body_mut() = Full::new(Bytes::from(vec![b'a'; 100]));
    let answer = send(&client(), within).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["body_len"], 100);
}

fn chunked_post(chunks: usize) -> Vec<u8> {
    let mut raw =
        b"POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..chunks {
        raw.extend_from_slice(b"32\r\n");
        raw.extend_from_slice(&[b'a'; 50]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[tokio::test]
async fn streamed_chunked_body_over_the_limit_is_413() {
    let gateway = gateway(false).await;
    let answer = raw(gateway.addr, &chunked_post(6)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");

    let answer = raw(gateway.addr, &chunked_post(2)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"body_len\":100"), "{answer}");
}

#[tokio::test]
async fn buffered_chunked_body_over_the_limit_is_413() {
    let gateway = gateway(true).await;
    let answer = raw(gateway.addr, &chunked_post(6)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
}
