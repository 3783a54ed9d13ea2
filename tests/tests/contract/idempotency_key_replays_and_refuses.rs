//! A payment API behind the `idempotency` plugin: a retried POST with the same Idempotency-Key
//! and body is answered from the stored response (`Idempotent-Replayed: true`) without reaching
//! the upstream again; the same key with another body is 422; a retry while the first is still
//! in flight is 409; a 5xx is not stored; keys are scoped per consumer; and when the upstream is
//! down the gateway's 502 releases the lock at once (the plugin learns of it in its response
//! phase), so the client's retry is not stuck behind a 409 until the lock's TTL.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;

use crate::auth_support::key_hash;
use tollgate_tests::{Gateway, Reply, Upstream, client, dead_port, send};

const ALICE: &str = "tg_alice_5f4e3d2c1b0a99887766554433221100";
const BOB: &str = "tg_bob_5f4e3d2c1b0a99887766554433221100aa";

fn config(upstream: &str, down: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.payments]
targets = ["{upstream}"]

[upstreams.down]
targets = ["{down}"]

[plugins.auth]
module = "{{plugins}}/auth.wasm"
[plugins.auth.config]
methods = ["api_key"]
api_key = {{ keys = [{{ hash = "{alice}", consumer = "alice" }}, {{ hash = "{bob}", consumer = "bob" }}] }}

[plugins.idem]
module = "{{plugins}}/idempotency.wasm"
[plugins.idem.config]
ttl_s = 600
lock_ttl_s = 60

[[routes]]
name = "payments"
path_prefix = "/pay"
upstream = "payments"
chain = ["auth", "idem"]

[[routes]]
name = "down"
path_prefix = "/down"
upstream = "down"
chain = ["auth", "idem"]
"#,
        alice = key_hash(ALICE),
        bob = key_hash(BOB),
    )
}

/// Counts calls; `/pay/slow` takes 600 ms, `/pay/fail` answers 500, the rest 201 `{"call":N}`.
async fn payments(calls: Arc<AtomicUsize>) -> Upstream {
    Upstream::start(Arc::new(move |req| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if path == "/pay/slow" {
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
            let status = if path == "/pay/fail" { 500 } else { 201 };
            let mut resp = Response::new(Full::new(Bytes::from(format!("{{\"call\":{n}}}"))));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
            resp.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            resp
        })
    }))
    .await
}

async fn post(gateway: &Gateway, path: &str, api_key: &str, key: &str, body: &str) -> Reply {
    send(
        &client(),
        Method::POST,
        &gateway.url(path),
        &[("x-api-key", api_key), ("idempotency-key", key)],
        Bytes::from(body.to_owned()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn same_key_replays_other_body_conflicts_and_5xx_is_not_stored() {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = payments(Arc::clone(&calls)).await;
    let gateway = Gateway::start(&config(&upstream.target(), &dead_port().await.to_string())).await;

    let first = post(
        &gateway,
        "/pay/orders",
        ALICE,
        "order-1",
        r#"{"amount":10}"#,
    )
    .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = post(
        &gateway,
        "/pay/orders",
        ALICE,
        "order-1",
        r#"{"amount":10}"#,
    )
    .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the stored response, byte for byte");
    assert_eq!(again.header("content-type"), Some("application/json"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a replay does not reach the upstream"
    );

    let other = post(
        &gateway,
        "/pay/orders",
        ALICE,
        "order-1",
        r#"{"amount":99}"#,
    )
    .await;
    assert_eq!(other.status, 422, "{:?}", other.body);
    assert_eq!(other.json()["error"], "idempotency_key_reused");

    // Bob's `order-1` is his own.
    let bob = post(&gateway, "/pay/orders", BOB, "order-1", r#"{"amount":10}"#).await;
    assert_eq!(bob.status, 201);
    assert_eq!(bob.header("idempotent-replayed"), None);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A 500 is not stored: the retry goes upstream again.
    for _ in 0..2 {
        let failed = post(&gateway, "/pay/fail", ALICE, "order-2", "{}").await;
        assert_eq!(failed.status, 500);
        assert_eq!(failed.header("idempotent-replayed"), None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_while_in_flight_is_409_and_a_failed_upstream_releases_the_lock() {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = payments(Arc::clone(&calls)).await;
    let gateway = Gateway::start(&config(&upstream.target(), &dead_port().await.to_string())).await;
    let gateway = Arc::new(gateway);

    let slow = {
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move { post(&gateway, "/pay/slow", ALICE, "order-3", "{}").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = post(&gateway, "/pay/slow", ALICE, "order-3", "{}").await;
    assert_eq!(busy.status, 409, "{:?}", busy.body);
    assert_eq!(busy.json()["error"], "request_in_flight");
    let first = slow.await.unwrap();
    assert_eq!(first.status, 201);
    let replayed = post(&gateway, "/pay/slow", ALICE, "order-3", "{}").await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Connection refused: the gateway answers 502 itself; the plugin's response phase hears of
    // it and releases the lock, so the retry is tried again (502), not refused with 409.
    for attempt in 0..2 {
        let reply = post(&gateway, "/down/orders", ALICE, "order-4", "{}").await;
        assert_eq!(reply.status, 502, "attempt {attempt}: {:?}", reply.body);
    }
    if let Ok(gateway) = Arc::try_unwrap(gateway) {
        gateway.shutdown().await;
    }
}
