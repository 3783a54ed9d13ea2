//! ip-filter admits or refuses clients by network: deny wins, an allow list admits only its
//! networks, IPv4-mapped IPv6 networks are IPv4, and a spoofed `X-Forwarded-For` from an
//! untrusted client (the test client, 127.0.0.1) changes nothing. Also the whole policy chain:
//! identity (standing in for auth) → rbac → ip-filter.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Reply, Upstream, get};

async fn gateway(upstream: &Upstream, filter: &str) -> Gateway {
    Gateway::start(&config(upstream, filter)).await
}

fn config(upstream: &Upstream, filter: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.ip-filter]
module = "{{plugins}}/ip_filter.wasm"
config = {{ {filter} }}

[[routes]]
name = "all"
path_prefix = "/"
upstream = "echo"
chain = ["ip-filter"]
"#,
        upstream = upstream.target()
    )
}

fn assert_status(reply: &Reply, status: u16, what: &str) {
    assert_eq!(
        reply.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    if status == 403 {
        let body = reply.json();
        assert_eq!(body["error"], "forbidden", "{what}");
        assert_eq!(body["message"], "not allowed", "{what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_and_deny_lists_decide_on_the_client_address() {
    let upstream = Upstream::echo("echo").await;
    for (filter, status) in [
        (r#"allow = ["127.0.0.0/8", "::1"]"#, 200),
        (r#"allow = ["127.0.0.1"]"#, 200),
        (r#"allow = ["::ffff:127.0.0.0/104"]"#, 200),
        (r#"allow = ["10.0.0.0/8", "::1"]"#, 403),
        (r#"deny = ["127.0.0.0/8"]"#, 403),
        (r#"deny = ["10.0.0.0/8", "::/0"]"#, 200),
        (r#"allow = ["127.0.0.0/8"], deny = ["127.0.0.1"]"#, 403),
        (r#"allow = ["0.0.0.0/0"], deny = ["::ffff:127.0.0.1"]"#, 403),
    ] {
        let gateway = gateway(&upstream, filter).await;
        assert_status(&get(&gateway.url("/x"), &[]).await, status, filter);
        gateway.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_forwarded_for_from_an_untrusted_client_is_ignored() {
    let upstream = Upstream::echo("echo").await;

    // Only 10/8 is allowed: claiming to be 10.1.2.3 does not help 127.0.0.1.
    let allow_10 = gateway(&upstream, r#"allow = ["10.0.0.0/8"]"#).await;
    for xff in ["10.1.2.3", "10.1.2.3, 127.0.0.1", "::ffff:10.1.2.3"] {
        let reply = get(&allow_10.url("/x"), &[("x-forwarded-for", xff)]).await;
        assert_status(&reply, 403, xff);
    }
    let reply = get(&allow_10.url("/x"), &[("x-real-ip", "10.1.2.3")]).await;
    assert_status(&reply, 403, "x-real-ip");
    allow_10.shutdown().await;

    // Loopback is denied: claiming to be elsewhere does not help either.
    let deny_loopback = gateway(&upstream, r#"deny = ["127.0.0.0/8", "::1"]"#).await;
    let reply = get(
        &deny_loopback.url("/x"),
        &[("x-forwarded-for", "203.0.113.9")],
    )
    .await;
    assert_status(&reply, 403, "spoofed public address");
    deny_loopback.shutdown().await;

    // And a spoofed denied address does not lock a real allowed client out.
    let deny_10 = gateway(&upstream, r#"deny = ["10.0.0.0/8"]"#).await;
    let reply = get(&deny_10.url("/x"), &[("x-forwarded-for", "10.0.0.1")]).await;
    assert_status(&reply, 200, "spoofed denied address");
    deny_10.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_networks_fail_the_load_naming_the_entry() {
    let upstream = Upstream::echo("echo").await;
    let err = match Gateway::try_start(&config(
        &upstream,
        r#"allow = ["127.0.0.0/8", "10.0.0.1/8"], deny = ["not-an-ip"]"#,
    ))
    .await
    {
        Ok(_) => panic!("a bad ip-filter config must fail the load"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("allow[1]"), "{err}");
    assert!(err.contains("did you mean \"10.0.0.0/8\""), "{err}");
    assert!(err.contains("deny[0]"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_then_rbac_then_ip_filter() {
    let upstream = Upstream::echo("echo").await;
    let chain = |allow: &str| {
        format!(
            r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.auth]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "auth", set_context = {{ consumer = "alice", roles = "admin" }} }}

[plugins.rbac]
module = "{{plugins}}/rbac.wasm"

[[plugins.rbac.config.rules]]
roles = ["admin"]
methods = ["*"]
paths = ["/admin/**"]
effect = "allow"

[plugins.ip-filter]
module = "{{plugins}}/ip_filter.wasm"
config = {{ allow = [{allow}] }}

[[routes]]
name = "all"
path_prefix = "/"
upstream = "echo"
chain = ["auth", "rbac", "ip-filter"]
"#,
            upstream = upstream.target()
        )
    };

    let office = Gateway::start(&chain(r#""127.0.0.0/8", "::1""#)).await;
    let reply = get(&office.url("/admin/users"), &[]).await;
    assert_status(&reply, 200, "admin from an allowed network");
    assert_eq!(reply.json()["headers"]["x-order"][0], "auth");
    assert_status(&get(&office.url("/other"), &[]).await, 403, "rbac refuses");
    office.shutdown().await;

    let elsewhere = Gateway::start(&chain(r#""192.0.2.0/24""#)).await;
    assert_status(
        &get(&elsewhere.url("/admin/users"), &[]).await,
        403,
        "admin from outside the allowed network",
    );
    elsewhere.shutdown().await;
}
