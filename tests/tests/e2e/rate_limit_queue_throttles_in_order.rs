//! Throttling: with `on_limit = "queue"` a request over the limit reserves the next slot and
//! waits for it (deferred, holding no plugin instance), so requests reach the upstream in the
//! order they arrived, spaced by the refill interval; past `max_queue` waiting requests the
//! overflow is refused with 503 `queue_full`, and past `max_wait_ms` with 429.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use tollgate_tests::{Gateway, Reply, Upstream, client, echo_response, send};

type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// An echo upstream that records the `x-seq` header of each request and when it arrived.
async fn recording_upstream() -> (Upstream, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let upstream = Upstream::start(Arc::new(move |req| {
        let seq = req
            .headers()
            .get("x-seq")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        seen.lock().unwrap().push((seq, Instant::now()));
        Box::pin(async move { echo_response("echo", &req) })
    }))
    .await;
    (upstream, arrivals)
}

fn config(upstream: &Upstream, limit: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.throttle]
module = "{{plugins}}/rate_limit.wasm"
pool_size = 1
config = {{ {limit} }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["throttle"]
"#,
        upstream = upstream.target()
    )
}

/// Send `n` requests 20 ms apart (so their arrival order is known), each with `x-seq: i`,
/// without waiting for the answers; return the replies in send order.
async fn burst(gateway: &Gateway, n: usize) -> Vec<Reply> {
    let client = client();
    let mut tasks = Vec::new();
    for i in 0..n {
        let client = client.clone();
        let url = gateway.url("/x");
        tasks.push(tokio::spawn(async move {
            let seq = i.to_string();
            send(&client, Method::GET, &url, &[("x-seq", &seq)], Bytes::new()).await
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_requests_pass_in_order_one_slot_apart_and_overflow_is_refused() {
    let (upstream, arrivals) = recording_upstream().await;
    // 5 per second (one slot every 200 ms), no burst beyond 1, at most 3 waiting. With
    // `pool_size = 1`, waiting requests must not hold the only instance or the rest would stall.
    let gateway = Gateway::start(&config(
        &upstream,
        r#"limit = 5, period = "1s", burst = 1, on_limit = "queue", max_queue = 3"#,
    ))
    .await;

    let started = Instant::now();
    let replies = burst(&gateway, 5).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    // The first goes at once, three wait 200/400/600 ms, the fifth would be fourth in line.
    assert_eq!(statuses, [200, 200, 200, 200, 503]);
    let full = replies[4].json();
    assert_eq!(full["error"], "queue_full", "{full}");
    assert!(replies[4].header("retry-after").is_some());
    assert!(full["retry_after_ms"].as_u64().unwrap() <= 200, "{full}");

    let arrivals = arrivals.lock().unwrap().clone();
    let order: Vec<&str> = arrivals.iter().map(|(seq, _)| seq.as_str()).collect();
    assert_eq!(order, ["0", "1", "2", "3"], "arrival order at the upstream");
    // The slots are exactly 200 ms apart; scheduling on a busy machine can shift one arrival a
    // little, so the gaps get slack, while the last slot cannot come early.
    let last = arrivals[3].1.duration_since(started);
    assert!(
        last >= Duration::from_millis(590),
        "last arrival after {last:?}"
    );
    for pair in arrivals.windows(2) {
        let gap = pair[1].1.duration_since(pair[0].1);
        assert!(
            (Duration::from_millis(100)..Duration::from_millis(500)).contains(&gap),
            "requests {} and {} reached the upstream {gap:?} apart",
            pair[0].0,
            pair[1].0
        );
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_longer_than_max_wait_is_refused_with_429() {
    let (upstream, arrivals) = recording_upstream().await;
    let gateway = Gateway::start(&config(
        &upstream,
        r#"limit = 5, period = "1s", burst = 1, on_limit = "queue", max_wait_ms = 300"#,
    ))
    .await;
    let started = Instant::now();
    let replies = burst(&gateway, 3).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    // Waits: 0, ~180 ms (admitted), ~360 ms (> 300: refused).
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(replies[2].json()["error"], "rate_limited");
    assert_eq!(arrivals.lock().unwrap().len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(150));
    gateway.shutdown().await;
}
