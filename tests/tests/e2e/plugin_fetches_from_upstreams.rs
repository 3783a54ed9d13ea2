//! A plugin calls upstreams through the `http-client` import: only those in its `fetch` list,
//! bounded by `timeout-ms`, with an error (not a hang) when the upstream is down, several at once.
//!
//! The `fetcher` fixture fetches `GET /data` from the upstream named in its config and answers
//! with that status and body (502 and the error text when the fetch fails), plus `x-fetch-ms`.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, Reply, Upstream, dead_port, get};

/// A gateway with upstreams `data` (echo), `slow` and `down`, and one route through a `fetcher`
/// plugin allowed to fetch from `allowed`, configured with `fixture_config`.
async fn gateway(data: &Upstream, slow: &Upstream, allowed: &str, fixture_config: &str) -> Gateway {
    let down = dead_port().await;
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.data]
targets = ["{data}"]

[upstreams.secret]
targets = ["{data}"]

[upstreams.slow]
targets = ["{slow}"]

[upstreams.down]
targets = ["{down}"]
connect_timeout_ms = 500

[plugins.fetcher]
module = "{{fixtures}}/fetcher.wasm"
timeout_ms = 20
fetch = [{allowed}]
config = {{ {fixture_config} }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "data"
chain = ["fetcher"]
"#,
        data = data.target(),
        slow = slow.target(),
    ))
    .await
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn fetch_ms(reply: &Reply) -> u64 {
    reply.header("x-fetch-ms").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_upstream_answers() {
    let data = Upstream::echo("data").await;
    let slow = Upstream::slow("slow", Duration::from_millis(150)).await;
    let gw = gateway(&data, &slow, r#""data", "slow""#, r#"upstream = "data""#).await;
    let reply = get(&gw.url("/anything"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let body = reply.json();
    assert_eq!(body["upstream"], "data");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/data");
    assert!(reply.header("x-fetch-ms").is_some());

    // Waiting for an upstream is not CPU time: 150 ms of waiting fits a 20 ms plugin deadline.
    let gw = gateway(&data, &slow, r#""slow""#, r#"upstream = "slow""#).await;
    let reply = get(&gw.url("/anything"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.json()["upstream"], "slow");
    assert!(fetch_ms(&reply) >= 140, "{}", fetch_ms(&reply));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_outside_the_fetch_list_is_refused() {
    let data = Upstream::echo("data").await;
    let slow = Upstream::echo("slow").await;
    let gw = gateway(&data, &slow, r#""data""#, r#"upstream = "secret""#).await;
    let reply = get(&gw.url("/"), &[]).await;
    assert_eq!(reply.status, 502);
    assert!(
        text(&reply).contains("upstream `secret` is not in this plugin's `fetch` list"),
        "{}",
        text(&reply)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_upstream_hits_the_requests_timeout() {
    let data = Upstream::echo("data").await;
    let slow = Upstream::slow("slow", Duration::from_secs(3)).await;
    let gw = gateway(
        &data,
        &slow,
        r#""slow""#,
        r#"upstream = "slow", timeout_ms = 200"#,
    )
    .await;
    let started = Instant::now();
    let reply = get(&gw.url("/"), &[]).await;
    assert_eq!(reply.status, 502);
    assert!(
        text(&reply).contains("did not answer within 200 ms"),
        "{}",
        text(&reply)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_is_down_gives_an_error_not_a_hang() {
    let data = Upstream::echo("data").await;
    let slow = Upstream::echo("slow").await;
    let gw = gateway(&data, &slow, r#""down""#, r#"upstream = "down""#).await;
    let started = Instant::now();
    let reply = get(&gw.url("/"), &[]).await;
    assert_eq!(reply.status, 502);
    assert!(
        text(&reply).contains("upstream `down` is unreachable"),
        "{}",
        text(&reply)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_one_call_run_concurrently() {
    let data = Upstream::slow("data", Duration::from_millis(400)).await;
    let slow = Upstream::slow("slow", Duration::from_millis(400)).await;
    let gw = gateway(
        &data,
        &slow,
        r#""data", "slow""#,
        r#"upstream = "data", also = "slow""#,
    )
    .await;
    let reply = get(&gw.url("/"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-also"), Some("200"));
    let took = fetch_ms(&reply);
    assert!(
        (390..750).contains(&took),
        "two 400 ms fetches took {took} ms"
    );
}
