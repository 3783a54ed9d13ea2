//! A plugin defers a request (throttling) and is called again later; the log phase runs after
//! the response and its effects are visible through shared state.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, Upstream, get};

fn config(upstream: &str) -> String {
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
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "throttle", defer_ms = 150 }}

[plugins.counter]
module = "{{fixtures}}/recorder.wasm"
pool_size = 3
config = {{ name = "counter", log_counter = "served", report_counter = "served" }}

[[routes]]
name = "slow"
path_prefix = "/deferred"
upstream = "echo"
chain = ["throttle"]

[[routes]]
name = "counted"
path_prefix = "/counted"
upstream = "echo"
chain = ["counter"]
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deferred_request_waits_then_passes() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let started = Instant::now();
    let reply = get(&gateway.url("/deferred/x"), &[]).await;
    let elapsed = started.elapsed();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.json()["headers"]["x-order"][0],
        "throttle",
        "called twice, recorded once"
    );
    assert!(
        elapsed >= Duration::from_millis(150),
        "answered after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_phase_runs_after_each_response_and_state_is_shared() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    for _ in 0..5 {
        assert_eq!(get(&gateway.url("/counted/x"), &[]).await.status, 200);
    }
    // The log phase runs after the client has the response, so wait for it to catch up. The
    // counter is shared by all three warm instances of the plugin.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = get(&gateway.url("/counted/x"), &[]).await;
        let seen: i64 = reply.json()["headers"]["x-counter"][0]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if seen >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "log phase counted only {seen} of 5 requests"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.shutdown().await;
}
