//! A plain-HTTP listener with `plain_http = "refuse"`: every request gets a 403 with a JSON body
//! saying HTTPS is required; the upstream is never called.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tls_support::gateway_config;
use tollgate_tests::{Gateway, Upstream, echo_response, get};

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_is_refused_with_json() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let upstream = Upstream::start(Arc::new(move |req| {
        seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { echo_response("echo", &req) })
    }))
    .await;
    let gateway = Gateway::start(&gateway_config(
        "plain_http = \"refuse\"",
        &upstream.target(),
        "",
    ))
    .await;

    for path in ["/", "/orders?id=1", "/no/such/route"] {
        let reply = get(&gateway.url(path), &[]).await;
        assert_eq!(reply.status, 403, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["error"], "https_required");
        assert!(body["message"].as_str().unwrap().contains("HTTPS"));
        assert!(reply.header("location").is_none());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the upstream was called");
    gateway.shutdown().await;
}
