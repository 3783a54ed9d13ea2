//! An operator meters usage per consumer and route with the `meter` plugin and reads it back from
//! the admin API: exact request counts per route and status class, byte totals and upstream
//! latency; usage survives a hot swap of the meter's config; bad queries get 400 naming the
//! parameter.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::Method;
use tollgate_tests::{Gateway, Upstream, admin_reload, client, dead_port, get, send};

/// Routes:
/// - `/api`: alice (a `recorder` sets `consumer`), echo upstream; with `x-fail` the recorder
///   answers 404 itself (no upstream call).
/// - `/down`: alice, an upstream where nothing listens (502).
/// - `/bob`: bob, echo upstream.
/// - `/open`: no consumer (metered as `anonymous`).
fn config(upstream: &str, dead: &str, retention_days: u32) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[upstreams.dead]
targets = ["{dead}"]
connect_timeout_ms = 500

[plugins.meter]
module = "meter"
pool_size = 2
config = {{ retention_days = {retention_days} }}

[plugins.alice]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "alice", set_context = {{ consumer = "alice", plan = "free" }}, respond_status = 404, respond_body = "nope", respond_if_header = "x-fail" }}

[plugins.bob]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "bob", set_context = {{ consumer = "bob" }} }}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = ["meter", "alice"]

[[routes]]
name = "down"
path_prefix = "/down"
upstream = "dead"
chain = ["meter", "alice"]

[[routes]]
name = "bob"
path_prefix = "/bob"
upstream = "echo"
chain = ["meter", "bob"]

[[routes]]
name = "open"
path_prefix = "/open"
upstream = "echo"
chain = ["meter"]
"#
    )
}

fn usage_url(gateway: &Gateway, query: &str) -> String {
    format!("http://{}/admin/usage?{query}", gateway.admin.unwrap())
}

/// The log phase runs after the client has its response: poll until the total reaches `want`.
async fn usage_when_total(gateway: &Gateway, query: &str, want: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = get(&usage_url(gateway, query), &[]).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let usage = reply.json();
        let total = usage["total"]["requests"].as_u64().unwrap();
        if total >= want || Instant::now() > deadline {
            assert_eq!(total, want, "usage: {usage}");
            return usage;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Send a POST with a body of `body_len` bytes; returns (status, response body bytes).
async fn post(url: &str, headers: &[(&str, &str)], body_len: usize) -> (u16, u64) {
    let reply = send(&client(), Method::POST, url, headers, vec![b'x'; body_len]).await;
    (reply.status.as_u16(), reply.body.len() as u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_counts_requests_statuses_and_bytes_per_route() {
    let upstream = Upstream::echo("echo").await;
    let dead = dead_port().await;
    let gateway = Gateway::start(&config(&upstream.target(), &dead.to_string(), 35)).await;

    let (mut api_in, mut api_out, mut down_out) = (0, 0, 0);
    for i in 0..5 {
        let (status, out) = post(&gateway.url("/api/items"), &[], 10 + i).await;
        assert_eq!(status, 200);
        api_in += 10 + i as u64;
        api_out += out;
    }
    for _ in 0..2 {
        let (status, out) = post(&gateway.url("/api/items"), &[("x-fail", "1")], 7).await;
        assert_eq!(status, 404);
        // Answered by a plugin before the gateway read the body: 0 request bytes received.
        api_out += out;
    }
    for _ in 0..3 {
        let (status, out) = post(&gateway.url("/down/x"), &[], 4).await;
        assert_eq!(status, 502);
        // The upstream could not be reached, so the gateway never read (nor forwarded) the body.
        down_out += out;
    }
    for _ in 0..4 {
        assert_eq!(get(&gateway.url("/bob/x"), &[]).await.status, 200);
    }
    assert_eq!(get(&gateway.url("/open/x"), &[]).await.status, 200);

    let usage = usage_when_total(&gateway, "consumer=alice", 10).await;
    assert_eq!(usage["consumer"], "alice");
    assert_eq!(usage["meters"], serde_json::json!(["meter"]));
    let api = &usage["routes"]["api"];
    assert_eq!(api["requests"], 7, "{usage}");
    assert_eq!(
        api["status"],
        serde_json::json!({"2xx": 5, "3xx": 0, "4xx": 2, "5xx": 0})
    );
    assert_eq!(api["request_bytes"], api_in);
    assert_eq!(api["response_bytes"], api_out);
    assert_eq!(
        api["upstream_calls"], 5,
        "the 404s never reached the upstream"
    );
    assert!(
        api["upstream_latency_avg_us"].as_u64().unwrap() > 0,
        "{usage}"
    );
    let down = &usage["routes"]["down"];
    assert_eq!(down["requests"], 3);
    assert_eq!(down["status"]["5xx"], 3);
    assert_eq!(down["request_bytes"], 0);
    assert_eq!(down["response_bytes"], down_out);
    assert!(
        usage["routes"].get("bob").is_none(),
        "bob's usage is his own"
    );
    let total = &usage["total"];
    assert_eq!(total["requests"], 10);
    assert_eq!(
        total["status"],
        serde_json::json!({"2xx": 5, "3xx": 0, "4xx": 2, "5xx": 3})
    );
    assert_eq!(total["request_bytes"], api_in);
    assert_eq!(total["response_bytes"], api_out + down_out);

    // One route only, other consumers, the anonymous one.
    let only = get(&usage_url(&gateway, "consumer=alice&route=down"), &[])
        .await
        .json();
    assert_eq!(only["total"]["requests"], 3);
    assert!(only["routes"].get("api").is_none());
    let bob = usage_when_total(&gateway, "consumer=bob", 4).await;
    assert_eq!(bob["routes"]["bob"]["status"]["2xx"], 4);
    usage_when_total(&gateway, "consumer=anonymous", 1).await;
    usage_when_total(&gateway, "consumer=nobody", 0).await;

    // A window with no traffic in it.
    let past = get(
        &usage_url(
            &gateway,
            "consumer=alice&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z",
        ),
        &[],
    )
    .await
    .json();
    assert_eq!(past["total"]["requests"], 0);
    assert_eq!(past["from"], "2020-01-01T00:00:00Z");
    assert_eq!(past["routes"], serde_json::json!({}));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_survives_a_hot_swap_of_the_meter() {
    let upstream = Upstream::echo("echo").await;
    let dead = dead_port().await.to_string();
    let gateway = Gateway::start(&config(&upstream.target(), &dead, 35)).await;
    for _ in 0..4 {
        assert_eq!(get(&gateway.url("/api/x"), &[]).await.status, 200);
    }
    usage_when_total(&gateway, "consumer=alice", 4).await;

    // A changed config loads new meter instances; the counters live in the shared state.
    gateway.write_config(&config(&upstream.target(), &dead, 30));
    let reload = admin_reload(&gateway).await;
    assert_eq!(
        reload.status,
        200,
        "{}",
        String::from_utf8_lossy(&reload.body)
    );
    assert!(reload.json()["report"]["loaded"].as_u64().unwrap() >= 1);
    for _ in 0..3 {
        assert_eq!(get(&gateway.url("/api/x"), &[]).await.status, 200);
    }
    let usage = usage_when_total(&gateway, "consumer=alice", 7).await;
    assert_eq!(usage["routes"]["api"]["status"]["2xx"], 7);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_usage_queries_get_400_naming_the_parameter() {
    let upstream = Upstream::echo("echo").await;
    let dead = dead_port().await.to_string();
    let gateway = Gateway::start(&config(&upstream.target(), &dead, 35)).await;
    for (query, parameter) in [
        ("", "consumer"),
        ("route=api", "consumer"),
        ("consumer=alice&from=yesterday", "from"),
        ("consumer=alice&to=2026-11-26", "to"),
        (
            "consumer=alice&from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z",
            "from",
        ),
        ("consumer=alice&client=x", "client"),
    ] {
        let reply = get(&usage_url(&gateway, query), &[]).await;
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["error"], "bad_request", "{query}: {body}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
    }
    let reply = send(
        &client(),
        Method::POST,
        &usage_url(&gateway, "consumer=alice"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(reply.status, 405);
    gateway.shutdown().await;
}
