//! Limits counted per consumer (set by auth, here the recorder fixture) or per API key are
//! independent of each other; a request without the key part is refused, skipped or counted by
//! its IP, as `missing` says.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Reply, Upstream, get};

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

[plugins.as-alice]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "as-alice", set_context = {{ consumer = "alice" }} }}

[plugins.as-bob]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "as-bob", set_context = {{ consumer = "bob" }} }}

[plugins.limit]
module = "{{plugins}}/rate_limit.wasm"
config = {{ {limit} }}

[[routes]]
name = "alice"
path_prefix = "/alice"
upstream = "echo"
chain = ["as-alice", "limit"]

[[routes]]
name = "bob"
path_prefix = "/bob"
upstream = "echo"
chain = ["as-bob", "limit"]

[[routes]]
name = "anonymous"
path_prefix = "/anon"
upstream = "echo"
chain = ["limit"]
"#,
        upstream = upstream.target()
    )
}

async fn statuses(gateway: &Gateway, path: &str, headers: &[(&str, &str)], n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let reply: Reply = get(&gateway.url(path), headers).await;
        out.push(reply.status.as_u16());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn each_consumer_has_its_own_limit() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(
        &upstream,
        r#"limit = 3, period = "1h", key = ["consumer"]"#,
    ))
    .await;

    assert_eq!(
        statuses(&gateway, "/alice/x", &[], 4).await,
        [200, 200, 200, 429]
    );
    // Bob is counted apart from Alice, also on another route.
    assert_eq!(
        statuses(&gateway, "/bob/x", &[], 4).await,
        [200, 200, 200, 429]
    );
    assert_eq!(statuses(&gateway, "/alice/y", &[], 1).await, [429]);

    // Default `missing = "deny"`: no consumer, no request.
    let anon = get(&gateway.url("/anon/x"), &[]).await;
    assert_eq!(anon.status, 403);
    assert_eq!(anon.json()["error"], "rate_limit_key_missing");
    assert_eq!(
        anon.json()["message"],
        "request has no consumer to count the rate limit by"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_and_route_combined() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(
        &upstream,
        r#"limit = 2, period = "1h", key = ["consumer", "route"], missing = "use-ip""#,
    ))
    .await;
    assert_eq!(
        statuses(&gateway, "/alice/x", &[], 3).await,
        [200, 200, 429]
    );
    assert_eq!(statuses(&gateway, "/bob/x", &[], 3).await, [200, 200, 429]);
    // Anonymous requests are counted by IP (and route) instead.
    assert_eq!(statuses(&gateway, "/anon/x", &[], 3).await, [200, 200, 429]);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_api_key_has_its_own_limit_and_no_key_can_skip() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(
        &upstream,
        r#"limit = 2, period = "1h", key = [{ header = "X-Api-Key" }], missing = "skip""#,
    ))
    .await;
    for api_key in ["k1", "k2", "k3"] {
        assert_eq!(
            statuses(&gateway, "/anon/x", &[("x-api-key", api_key)], 3).await,
            [200, 200, 429],
            "{api_key}"
        );
    }
    // `missing = "skip"`: requests without the header are not counted at all.
    assert_eq!(statuses(&gateway, "/anon/x", &[], 5).await, [200; 5]);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stacked_limits_report_the_most_restrictive() {
    let upstream = Upstream::echo("echo").await;
    let stacked = |chain: &str| {
        format!(
            r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.as-alice]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "as-alice", set_context = {{ consumer = "alice" }} }}

[plugins.wide]
module = "{{plugins}}/rate_limit.wasm"
config = {{ limit = 100, period = "1m", key = ["ip"] }}

[plugins.narrow]
module = "{{plugins}}/rate_limit.wasm"
config = {{ limit = 3, period = "1h", key = ["consumer"] }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = {chain}
"#,
            upstream = upstream.target()
        )
    };
    for chain in [
        r#"["as-alice", "wide", "narrow"]"#,
        r#"["as-alice", "narrow", "wide"]"#,
    ] {
        let gateway = Gateway::start(&stacked(chain)).await;
        for expected in ["2", "1", "0"] {
            let reply = get(&gateway.url("/x"), &[]).await;
            assert_eq!(reply.status, 200, "{chain}");
            assert_eq!(
                reply.header("ratelimit-remaining"),
                Some(expected),
                "{chain}"
            );
            assert_eq!(reply.header("ratelimit-limit"), Some("3"), "{chain}");
            assert_eq!(
                reply.header("ratelimit-policy"),
                Some("3;w=3600"),
                "{chain}"
            );
        }
        let refused = get(&gateway.url("/x"), &[]).await;
        assert_eq!(refused.status, 429, "{chain}");
        gateway.shutdown().await;
    }
}
