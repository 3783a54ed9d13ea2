//! A limit keyed by client IP counts the address the gateway derived: an untrusted client
//! (the test client on 127.0.0.1) cannot escape it by rotating `X-Forwarded-For`, while behind a
//! trusted proxy each forwarded client has its own count.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Upstream, get};

fn config(upstream: &Upstream, trusted: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false
trusted_proxies = [{trusted}]

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.limit]
module = "{{plugins}}/rate_limit.wasm"
config = {{ limit = 5, period = "1h", key = ["ip"] }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["limit"]
"#,
        upstream = upstream.target()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_forwarded_for_from_an_untrusted_client_is_still_limited() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream, "")).await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let xff = format!("203.0.113.{i}");
        let reply = get(&gateway.url("/x"), &[("x-forwarded-for", &xff)]).await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(&statuses[..5], &[200; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_each_client_is_counted_apart() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream, r#""127.0.0.1/32", "::1/128""#)).await;
    for i in 0..10 {
        let xff = format!("203.0.113.{i}");
        let reply = get(&gateway.url("/x"), &[("x-forwarded-for", &xff)]).await;
        assert_eq!(reply.status, 200, "client {xff}");
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let reply = get(&gateway.url("/x"), &[("x-forwarded-for", "198.51.100.1")]).await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    gateway.shutdown().await;
}
