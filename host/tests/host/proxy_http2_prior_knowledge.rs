//! A client speaking HTTP/2 without TLS (prior knowledge) is served like an HTTP/1.1 one.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use proxy_support::*;

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let up = mock_upstream("up").await;
    let config = config(vec![upstream("up", &[up])], vec![prefix("r", "/", "up")]);
    let gateway = Gateway::start(table(&config, HashMap::new())).await;

    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req = Request::post(gateway.url("/h2/path?q=1"))
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let response = client.request(req).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed["path"], "/h2/path");
    assert_eq!(echoed["query"], "q=1");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["body_len"], 5);
    assert_eq!(
        echoed["headers"]["host"],
        gateway.addr.to_string(),
        ":authority becomes Host"
    );
    assert_eq!(
        echoed["headers"]["x-forwarded-host"],
        gateway.addr.to_string()
    );
}
