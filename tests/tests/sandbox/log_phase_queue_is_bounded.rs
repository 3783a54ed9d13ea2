//! A plugin's log phase is bounded: at most 1024 log calls per plugin are in flight or queued.
//! Here each log call fetches an upstream that takes 5 s and the plugin has 4 instances, so log
//! calls pile up; past 1024 a request's log call is dropped and counted in
//! `tollgate_plugin_log_dropped_total{plugin}`. Clients never wait for the log phase, and the
//! gateway keeps serving with bounded memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tollgate_tests::{Upstream, client, echo_response, get, send};

use crate::sandbox_support::{gateway, metrics, rss, value};

/// Log-phase calls one plugin may have in flight (`RuntimeOptions::log_queue_per_plugin`).
const QUEUE: usize = 1024;
const REQUESTS: usize = 1600;
const CONCURRENCY: usize = 64;
/// How long the log phase's upstream takes to answer.
const LOG_FETCH: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_log_phase_drops_and_counts_past_its_queue() {
    let upstream = Upstream::echo("up").await;
    // The log phase's upstream: counts the fetches it gets, answers after `LOG_FETCH`.
    let fetched = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&fetched);
    let slow = Upstream::start(Arc::new(move |req| {
        seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(LOG_FETCH).await;
            echo_response("slow", &req)
        })
    }))
    .await;
    // `timeout_ms` is also how long a log call waits for an instance: 20 s, so log calls that
    // find all 4 instances busy stay queued (holding their slot) for the whole test.
    let gateway = gateway(
        &upstream,
        &format!(
            r#"
[upstreams.slow]
targets = ["{slow}"]

[plugins.slow-log]
module = "{{fixtures}}/abuser.wasm"
pool_size = 1
max_instances = 4
timeout_ms = 20000
fetch = ["slow"]
config = {{ mode = "log-fetch", upstream = "slow" }}

[[routes]]
name = "logged"
path_prefix = "/logged"
upstream = "up"
chain = ["slow-log"]

[[routes]]
name = "plain"
path_prefix = "/plain"
upstream = "up"
"#,
            slow = slow.target()
        ),
    )
    .await;
    assert_eq!(get(&gateway.url("/plain"), &[]).await.status, 200);
    let rss_before = rss();

    // 1600 requests, 64 at a time, each timed.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let next = Arc::clone(&next);
            let url = gateway.url("/logged");
            tokio::spawn(async move {
                let client = client();
                let mut times = Vec::new();
                while next.fetch_add(1, Ordering::SeqCst) < REQUESTS {
                    let t = Instant::now();
                    let reply = send(&client, http::Method::GET, &url, &[], Bytes::new()).await;
                    assert_eq!(reply.status, 200, "{:?}", reply.body);
                    times.push(t.elapsed());
                }
                times
            })
        })
        .collect();
    let mut times = Vec::new();
    for w in workers {
        times.extend(w.await.unwrap());
    }
    let flood = started.elapsed();
    assert_eq!(times.len(), REQUESTS);
    times.sort();
    let (p50, max) = (times[REQUESTS / 2], times[REQUESTS - 1]);
    // A response held for its log call would take `LOG_FETCH` (or the 20 s instance wait).
    assert!(
        max < LOG_FETCH / 2,
        "the log phase delayed responses: p50 {p50:?}, max {max:?} (flood took {flood:?})"
    );

    let text = metrics(&gateway).await;
    let dropped = value(
        &text,
        "tollgate_plugin_log_dropped_total",
        &[("plugin", "slow-log")],
    );
    // A log call is dropped only while `QUEUE` others hold a slot, so at least `QUEUE` were
    // taken: no more than `REQUESTS - QUEUE` can be dropped.
    assert!(
        dropped > 0.0 && dropped <= (REQUESTS - QUEUE) as f64,
        "dropped {dropped} log calls of {REQUESTS} (queue {QUEUE}, flood took {flood:?})"
    );
    // No slot frees before a log fetch is answered: when the flood was quicker than that,
    // nearly every request past the first `QUEUE` was dropped (a few may still be finishing).
    if flood < LOG_FETCH {
        assert!(
            dropped >= (REQUESTS - QUEUE - CONCURRENCY) as f64,
            "only {dropped} of {REQUESTS} log calls dropped in {flood:?}: the queue holds more than {QUEUE}"
        );
    }
    // The log calls that got a slot really run: the slow upstream sees their fetches.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetched.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no log call reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The gateway still serves, both routes, promptly; the queued log calls cost little memory.
    for path in ["/plain", "/logged"] {
        let t = Instant::now();
        assert_eq!(get(&gateway.url(path), &[]).await.status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            t.elapsed()
        );
    }
    let grown = rss().saturating_sub(rss_before);
    assert!(
        grown < 128 << 20,
        "{REQUESTS} requests with a backed-up log phase grew the process by {} MB",
        grown >> 20
    );
}

/// A plugin with a request phase and a slow log phase: log calls hold at most half of its
/// instances, so requests keep finding one while every log call is still waiting on its fetch.
#[tokio::test]
async fn a_slow_log_phase_leaves_instances_for_requests() {
    let upstream = Upstream::echo("up").await;
    let slow = Upstream::slow("slow", Duration::from_secs(3)).await;
    let gateway = gateway(
        &upstream,
        &format!(
            r#"
[upstreams.slow]
targets = ["{slow}"]

[plugins.both]
module = "{{fixtures}}/abuser.wasm"
pool_size = 1
max_instances = 4
timeout_ms = 500
fetch = ["slow"]
config = {{ mode = "request-log-fetch", upstream = "slow" }}

[[routes]]
name = "both"
path_prefix = "/both"
upstream = "up"
chain = ["both"]
"#,
            slow = slow.target()
        ),
    )
    .await;
    // Twenty requests, spaced so each one's log call has started (and is stuck on its 3 s
    // fetch) before the next arrives: without a share for log calls, the fifth would find all
    // four instances in log calls and get 503 `unavailable`.
    for i in 0..20 {
        let reply = get(&gateway.url("/both"), &[]).await;
        assert_eq!(reply.status, 200, "request {i}: {:?}", reply.body);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}
