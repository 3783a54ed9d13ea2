//! Plugins that loop forever, grow memory without bound, read outside their memory or trap fail
//! only the request that
//! triggered them — with a 5xx naming the plugin, within the plugin's deadline — while other
//! requests through the same gateway keep succeeding.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::Method;
use tollgate_tests::{Gateway, Reply, Upstream, client, get, send};

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

[plugins.looper]
module = "{{fixtures}}/looper.wasm"
timeout_ms = 50
config = {{ trigger_header = "x-hostile" }}

[plugins.memory-hog]
module = "{{fixtures}}/memory_hog.wasm"
memory_limit_mb = 8
timeout_ms = 2000
config = {{ trigger_header = "x-hostile" }}

[plugins.trapper]
module = "{{fixtures}}/trapper.wasm"
config = {{ trigger_header = "x-hostile" }}

[plugins.past-end]
module = "{{fixtures}}/trapper.wasm"
config = {{ trigger_header = "x-hostile", mode = "past_end" }}

[plugins.far]
module = "{{fixtures}}/trapper.wasm"
config = {{ trigger_header = "x-hostile", mode = "far" }}

[plugins.trapper-open]
module = "{{fixtures}}/trapper.wasm"
on_error = "fail-open"
config = {{ trigger_header = "x-hostile" }}

[[routes]]
name = "loop"
path_prefix = "/loop"
upstream = "echo"
chain = ["looper"]

[[routes]]
name = "memory"
path_prefix = "/memory"
upstream = "echo"
chain = ["memory-hog"]

[[routes]]
name = "trap"
path_prefix = "/trap"
upstream = "echo"
chain = ["trapper"]

[[routes]]
name = "past-end"
path_prefix = "/past-end"
upstream = "echo"
chain = ["past-end"]

[[routes]]
name = "far"
path_prefix = "/far"
upstream = "echo"
chain = ["far"]

[[routes]]
name = "trap-open"
path_prefix = "/trap-open"
upstream = "echo"
chain = ["trapper-open"]
"#
    )
}

/// Fire `n` good requests at `path` concurrently; all must succeed.
async fn good_requests(gateway: &Gateway, path: &str, n: usize) -> Vec<Reply> {
    let client = client();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let client = client.clone();
        let url = gateway.url(path);
        tasks.push(tokio::spawn(async move {
            send(&client, Method::GET, &url, &[], bytes::Bytes::new()).await
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    replies
}

async fn hostile_request_fails_alone(
    path: &str,
    plugin: &str,
    status: u16,
    kind: &str,
    within: Duration,
) {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    // Warm up: the route works for normal requests.
    assert_eq!(get(&gateway.url(path), &[]).await.status, 200);

    let hostile_url = gateway.url(path);
    let hostile = tokio::spawn(async move {
        let started = Instant::now();
        let reply = get(&hostile_url, &[("x-hostile", "1")]).await;
        (reply, started.elapsed())
    });
    let good = good_requests(&gateway, path, 50).await;
    let (reply, elapsed) = hostile.await.unwrap();

    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["plugin"], plugin);
    assert_eq!(body["kind"], kind);
    assert!(elapsed < within, "hostile request took {elapsed:?}");
    for r in &good {
        assert_eq!(
            r.status,
            200,
            "a good request failed: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    // The plugin's pool replaced the broken instance: the route still serves, and the hostile
    // request fails the same way again.
    assert_eq!(get(&gateway.url(path), &[]).await.status, 200);
    assert_eq!(
        get(&gateway.url(path), &[("x-hostile", "1")]).await.status,
        status
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_times_out_at_its_deadline() {
    hostile_request_fails_alone("/loop", "looper", 503, "timeout", Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_hits_its_cap() {
    hostile_request_fails_alone(
        "/memory",
        "memory-hog",
        503,
        "memory_limit",
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_fails_the_request_with_500() {
    hostile_request_fails_alone("/trap", "trapper", 500, "trap", Duration::from_secs(2)).await;
}

/// The guest's loads and stores carry no bounds checks (the engine's guard pages cover all a
/// 32-bit address reaches): a load just past the end of memory, and one at the very end of the
/// address space, must still trap and fail only their request.
#[tokio::test(flavor = "multi_thread")]
async fn a_load_past_the_end_of_memory_traps() {
    hostile_request_fails_alone("/past-end", "past-end", 500, "trap", Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_at_the_end_of_the_32_bit_address_space_traps() {
    hostile_request_fails_alone("/far", "far", 500, "trap", Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fail_open_plugin_that_traps_is_skipped() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;
    let reply = get(&gateway.url("/trap-open/x"), &[("x-hostile", "1")]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["upstream"], "echo");
    gateway.shutdown().await;
}
