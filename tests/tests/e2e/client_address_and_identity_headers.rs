//! Who the client is: a spoofed `X-Forwarded-For` from an untrusted peer changes nothing, a
//! trusted proxy's chain is walked from the right, identity headers sent by the client never
//! reach a plugin or the upstream, and header names with underscores are refused.
//!
//! The test client connects from 127.0.0.1; the `client-ip` fixture copies `client-ip()` into
//! `x-seen-client-ip` and the header names it saw into `x-seen-headers`, and the echo upstream
//! shows both.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use tollgate_tests::{Gateway, Upstream, get};

async fn gateway(upstream: &Upstream, gateway_extra: &str, plugin_config: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false
{gateway_extra}

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{}"]

[plugins.seen]
module = "{{fixtures}}/client_ip.wasm"
config = {{ {plugin_config} }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["seen"]
"#,
        upstream.target()
    ))
    .await
}

/// The upstream's view: (client-ip the plugin saw, X-Forwarded-For sent upstream, all headers).
async fn through(gateway: &Gateway, headers: &[(&str, &str)]) -> (String, String, Value) {
    let reply = get(&gateway.url("/who"), headers).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let seen = reply.json()["headers"].clone();
    let first = |name: &str| seen[name][0].as_str().unwrap_or_default().to_owned();
    (first("x-seen-client-ip"), first("x-forwarded-for"), seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let upstream = Upstream::echo("echo").await;
    let gw = gateway(&upstream, "", "").await;
    let (client, xff, _) = through(
        &gw,
        &[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
        ],
    )
    .await;
    assert_eq!(client, "127.0.0.1");
    assert_eq!(
        xff, "127.0.0.1",
        "the client's chain is replaced by the peer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_right_most_untrusted_address_is_the_client() {
    let upstream = Upstream::echo("echo").await;
    let gw = gateway(
        &upstream,
        r#"trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]"#,
        "",
    )
    .await;

    let (client, xff, _) = through(&gw, &[("x-forwarded-for", "1.2.3.4, 5.6.7.8")]).await;
    assert_eq!(
        client, "5.6.7.8",
        "1.2.3.4 was claimed by 5.6.7.8, whom nobody vouches for"
    );
    assert_eq!(
        xff, "1.2.3.4, 5.6.7.8, 127.0.0.1",
        "a trusted chain is kept and extended"
    );

    let (client, _, _) = through(&gw, &[("x-forwarded-for", "1.2.3.4, 10.0.0.1")]).await;
    assert_eq!(client, "1.2.3.4", "10.0.0.1 is a trusted proxy: skipped");

    let (client, _, _) = through(&gw, &[("x-forwarded-for", "1.2.3.4, nonsense, 10.0.0.1")]).await;
    assert_eq!(
        client, "10.0.0.1",
        "a malformed entry stops the walk at the last good hop"
    );

    let (client, xff, _) = through(&gw, &[]).await;
    assert_eq!((client.as_str(), xff.as_str()), ("127.0.0.1", "127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_headers_from_the_client_never_reach_plugins_or_the_upstream() {
    let upstream = Upstream::echo("echo").await;
    let gw = gateway(
        &upstream,
        "",
        r#"set_header = ["x-consumer-id", "set-by-plugin"]"#,
    )
    .await;
    let forged = [
        ("x-consumer-id", "admin"),
        ("x-consumer-groups", "admins"),
        ("x-authenticated-userid", "admin"),
        ("remote-user", "admin"),
        ("x-remote-user", "admin"),
        ("x-user-id", "1"),
        ("x-client-cert", "forged"),
        ("x-client-cert-chain", "forged"),
        ("x-kept", "yes"),
    ];
    let (_, _, seen) = through(&gw, &forged).await;
    let plugin_saw = seen["x-seen-headers"][0].as_str().unwrap();
    for (name, _) in &forged[..8] {
        assert!(
            !plugin_saw.split(',').any(|h| h == *name),
            "{name} reached the plugin: {plugin_saw}"
        );
        if *name != "x-consumer-id" {
            assert!(
                seen.get(name).is_none(),
                "{name} reached the upstream: {seen}"
            );
        }
    }
    assert!(plugin_saw.split(',').any(|h| h == "x-kept"));
    // What a plugin sets is what the upstream gets.
    assert_eq!(seen["x-consumer-id"], serde_json::json!(["set-by-plugin"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_identity_header_list_is_configurable() {
    let upstream = Upstream::echo("echo").await;
    let gw = gateway(
        &upstream,
        r#"strip_identity_headers = ["X-Tenant", "x-scope-*"]"#,
        "",
    )
    .await;
    let (_, _, seen) = through(
        &gw,
        &[
            ("x-tenant", "other"),
            ("x-scope-read", "all"),
            ("x-consumer-id", "kept-now"),
        ],
    )
    .await;
    assert!(seen.get("x-tenant").is_none(), "{seen}");
    assert!(seen.get("x-scope-read").is_none(), "{seen}");
    assert_eq!(seen["x-consumer-id"], serde_json::json!(["kept-now"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn header_names_with_underscores_are_refused() {
    let upstream = Upstream::echo("echo").await;
    let gw = gateway(&upstream, "", "").await;
    let reply = get(&gw.url("/who"), &[("x_consumer_id", "admin")]).await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["error"], "invalid_header");
    assert_eq!(body["header"], "x_consumer_id");
    assert!(
        body["message"].as_str().unwrap().contains("x_consumer_id"),
        "{body}"
    );

    let lenient = gateway(&upstream, "reject_underscore_headers = false", "").await;
    let (_, _, seen) = through(&lenient, &[("x_custom", "1")]).await;
    assert_eq!(seen["x_custom"], serde_json::json!(["1"]));
}
