//! A path rewritten by `transform` obeys the gateway's one path rule: what the policy plugin
//! after it (RBAC) decides on is exactly what the upstream receives. A rewrite that would put a
//! dot-segment into the path is refused with 400 rather than resolved (it could climb out of the
//! prefix it targets); duplicate slashes a rewrite produces are normalised.

#![allow(clippy::unwrap_used)]

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

[plugins.public]
module = "{{plugins}}/transform.wasm"
config = {{ request.path = {{ prefix = "/pub", replace = "/internal" }} }}

[plugins.files]
module = "{{plugins}}/transform.wasm"
config = {{ request.path = {{ regex = '^/f/a(.*)$', replace = '/store/$1' }} }}

[plugins.slashes]
module = "{{plugins}}/transform.wasm"
config = {{ request.path = {{ regex = '^/g/(.*)$', replace = '/store//$1' }} }}

[plugins.rbac]
module = "{{plugins}}/rbac.wasm"

[[plugins.rbac.config.rules]]
anonymous = true
methods = ["*"]
paths = ["/**"]
effect = "allow"

[[plugins.rbac.config.rules]]
anonymous = true
methods = ["*"]
paths = ["/internal/admin", "/internal/admin/**", "/store/secret"]
effect = "deny"

[[routes]]
name = "pub"
path_prefix = "/pub"
upstream = "echo"
chain = ["public", "rbac"]

[[routes]]
name = "files"
path_prefix = "/f"
upstream = "echo"
chain = ["files", "rbac"]

[[routes]]
name = "slashes"
path_prefix = "/g"
upstream = "echo"
chain = ["slashes", "rbac"]
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_after_the_rewrite_sees_what_the_upstream_gets() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let reply = get(&gateway.url("/pub/orders"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["path"], "/internal/orders");

    for path in [
        "/pub/admin",
        "/pub//admin/",
        "/pub/%61dmin/x",
        "/pub/x/../admin",
    ] {
        let reply = get(&gateway.url(path), &[]).await;
        assert_eq!(reply.status, 403, "{path}: {:?}", reply.body);
    }

    // `/store//secret` is normalised to `/store/secret` before RBAC sees it.
    let reply = get(&gateway.url("/g/secret"), &[]).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    let reply = get(&gateway.url("/g/public"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["path"], "/store/public");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewrite_that_makes_a_dot_segment_is_refused() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let reply = get(&gateway.url("/f/abc"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["path"], "/store/bc");

    // `a..` is a legal segment, but its capture `..` would make `/store/..` = `/`.
    for path in ["/f/a..", "/f/a%2E%2E", "/f/a."] {
        let reply = get(&gateway.url(path), &[]).await;
        assert_eq!(reply.status, 400, "{path}: {:?}", reply.body);
        let body = reply.json();
        assert_eq!(body["error"], "invalid_rewrite", "{path}");
        assert_eq!(body["plugin"], "transform", "{path}");
        assert!(
            body.get("upstream").is_none(),
            "{path}: upstream must not run"
        );
    }
    gateway.shutdown().await;
}
