//! A route's plugin chain runs in order on the request and in reverse on the response; a plugin
//! that answers skips the upstream; a failing plugin gets a JSON error naming it; the log phase
//! runs after the response.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use proxy_support::*;
use tollgate::chain::{Chain, FailureKind};

async fn gateway_with(chain: Arc<TestChain>) -> (Gateway, Arc<TestChain>) {
    let up = mock_upstream("up").await;
    let mut route = prefix("chained", "/", "up");
    route.chain = vec!["a".into(), "b".into(), "c".into()];
    let config = config(vec![upstream("up", &[up])], vec![route]);
    let chains = HashMap::from([("chained".to_owned(), chain.clone() as Arc<dyn Chain>)]);
    (Gateway::start(table(&config, chains)).await, chain)
}

async fn wait_for_log(chain: &TestChain) {
    for _ in 0..100 {
        if !chain.logs.lock().unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the log phase never ran: {:?}", chain.events());
}

#[tokio::test]
async fn plugins_run_in_order_and_in_reverse() {
    let chain = Arc::new(TestChain::new(vec![
        Step::Tag("a"),
        Step::Tag("b"),
        Step::Tag("c"),
    ]));
    let (gateway, chain) = gateway_with(chain).await;

    let answer = get(&gateway.url("/x")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let echoed = answer.json();
    for name in ["a", "b", "c"] {
        assert_eq!(
            echoed["headers"][format!("x-plugin-{name}")],
            name,
            "request changes reach the upstream"
        );
    }
    assert_eq!(answer.headers["x-response-order"], "c,b,a");
    wait_for_log(&chain).await;
    assert_eq!(
        chain.events(),
        [
            "request:a",
            "request:b",
            "request:c",
            "response:c",
            "response:b",
            "response:a",
            "log:chained"
        ]
    );
    let entry = chain.logs.lock().unwrap()[0].clone();
    assert_eq!(entry.status, 200);
    assert_eq!(
        entry.response_bytes,
        u64::try_from(answer.body.len()).unwrap()
    );
    assert!(entry.upstream.is_some() && entry.upstream_micros.is_some());
}

#[tokio::test]
async fn a_plugin_reply_skips_the_upstream() {
    let chain = Arc::new(TestChain::new(vec![
        Step::Tag("a"),
        Step::Respond("deny", StatusCode::FORBIDDEN),
        Step::Tag("never"),
    ]));
    let (gateway, chain) = gateway_with(chain).await;

    let answer = get(&gateway.url("/x")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["from"], "plugin");
    assert_eq!(
        answer.headers["content-length"],
        answer.body.len().to_string()
    );
    assert_eq!(answer.headers["x-response-order"], "deny,a");
    wait_for_log(&chain).await;
    assert_eq!(
        chain.events(),
        [
            "request:a",
            "request:deny",
            "response:deny",
            "response:a",
            "log:chained"
        ]
    );
    assert!(chain.logs.lock().unwrap()[0].upstream.is_none());
}

#[tokio::test]
async fn failing_plugins_are_named_in_the_error() {
    for (kind, status) in [
        (FailureKind::Trap, StatusCode::INTERNAL_SERVER_ERROR),
        (FailureKind::BadAction, StatusCode::INTERNAL_SERVER_ERROR),
        (FailureKind::Timeout, StatusCode::SERVICE_UNAVAILABLE),
        (FailureKind::MemoryLimit, StatusCode::SERVICE_UNAVAILABLE),
        (FailureKind::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let chain = Arc::new(TestChain::new(vec![
            Step::Tag("a"),
            Step::Fail("auth", kind),
        ]));
        let (gateway, _chain) = gateway_with(chain).await;
        let answer = get(&gateway.url("/x")).await;
        assert_eq!(answer.status, status, "{kind:?}");
        let body = answer.json();
        assert_eq!(body["error"], "plugin_failed");
        assert_eq!(body["plugin"], "auth");
        assert_eq!(body["kind"], kind.as_str());
    }
}

#[tokio::test]
async fn plugins_that_need_bodies_get_them_buffered() {
    let mut chain = TestChain::new(vec![Step::Tag("a")]);
    chain.needs_request_body = true;
    chain.needs_response_body = true;
    let (gateway, _chain) = gateway_with(Arc::new(chain)).await;

    let mut req = request(Method::POST, &gateway.url("/x"), &[]);
    *req.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(b"hello"));
    let answer = send(&client(), req).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["body_len"], 5);
    assert_eq!(
        answer.headers["x-seen-body-len"],
        answer.body.len().to_string()
    );
    assert_eq!(
        answer.headers["content-length"],
        answer.body.len().to_string()
    );
}
