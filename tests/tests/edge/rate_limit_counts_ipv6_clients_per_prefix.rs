//! A rate limit keyed by client IP counts an IPv6 client by its /64 (configurable with
//! `ipv6_prefix`): a client that owns a /64 cannot take a fresh limit from each of its
//! addresses. Over `[::1]` directly, and behind a trusted proxy that forwards IPv6 clients.

use tollgate_tests::{Upstream, get};

fn config(upstream: &Upstream, listen: &str, prefix: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false
trusted_proxies = ["127.0.0.1/32"]

[[listeners]]
addr = "{listen}"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.limit]
module = "{{plugins}}/rate_limit.wasm"
config = {{ limit = 2, period = "1h", key = ["ip"] {prefix} }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["limit"]
"#,
        upstream = upstream.target()
    )
}

async fn statuses(url: &str, clients: &[&str]) -> Vec<u16> {
    let mut out = Vec::new();
    for xff in clients {
        let headers: &[(&str, &str)] = if xff.is_empty() {
            &[]
        } else {
            &[("x-forwarded-for", xff)]
        };
        out.push(get(url, headers).await.status.as_u16());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_of_one_slash_64_share_a_limit_by_default() {
    let upstream = Upstream::echo("echo").await;
    let gateway = tollgate_tests::Gateway::start(&config(&upstream, "127.0.0.1:0", "")).await;
    let url = gateway.url("/x");
    // Three addresses in 2001:db8:1:2::/64: the third request is over the limit of 2.
    let got = statuses(
        &url,
        &["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"],
    )
    .await;
    assert_eq!(got, [200, 200, 429]);
    // Another /64 has its own count; IPv4 clients are still counted per address.
    let got = statuses(&url, &["2001:db8:1:3::1", "192.0.2.1", "192.0.2.2"]).await;
    assert_eq!(got, [200, 200, 200]);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_prefix_sets_the_width_counted_as_one_client() {
    let upstream = Upstream::echo("echo").await;
    let wide = config(&upstream, "127.0.0.1:0", ", ipv6_prefix = 48");
    let gateway = tollgate_tests::Gateway::start(&wide).await;
    let url = gateway.url("/x");
    let got = statuses(
        &url,
        &["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1"],
    )
    .await;
    assert_eq!(got, [200, 200, 429], "one /48");
    gateway.shutdown().await;

    let narrow = config(&upstream, "127.0.0.1:0", ", ipv6_prefix = 128");
    let gateway = tollgate_tests::Gateway::start(&narrow).await;
    let url = gateway.url("/x");
    let got = statuses(&url, &["2001:db8::1", "2001:db8::2", "2001:db8::3"]).await;
    assert_eq!(got, [200, 200, 200], "each address its own");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_on_ipv6_loopback_is_counted_by_its_prefix() {
    let upstream = Upstream::echo("echo").await;
    let gateway = tollgate_tests::Gateway::start(&config(&upstream, "[::1]:0", "")).await;
    let url = gateway.url("/x");
    assert!(gateway.addr.is_ipv6());
    let got = statuses(&url, &["", "", ""]).await;
    assert_eq!(got, [200, 200, 429]);
    gateway.shutdown().await;
}
