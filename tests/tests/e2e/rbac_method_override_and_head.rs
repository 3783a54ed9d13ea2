//! RBAC decides on the method the upstream runs. Method-override headers
//! (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`) and the `_method` query
//! parameter are ignored and removed unless `allow_method_override = true`, in which case a
//! POST's override is what is decided on and becomes the request's method. HEAD follows GET's
//! rule only with `head_as_get = true`.

#![allow(clippy::unwrap_used)]

use http::Method;
use tollgate_tests::{Gateway, Reply, Upstream, client, send};

async fn gateway(upstream: &Upstream, allow_override: bool, head_as_get: bool) -> Gateway {
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.who]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "who", set_context = {{ consumer = "bob", roles = "user" }} }}

[plugins.rbac]
module = "{{plugins}}/rbac.wasm"

[plugins.rbac.config]
allow_method_override = {allow_override}
head_as_get = {head_as_get}

# Users read and create orders, and may PUT them; they never DELETE (default deny), and
# `/api/ro` is read-only.
[[plugins.rbac.config.rules]]
roles = ["user"]
methods = ["GET", "POST", "PUT"]
paths = ["/api/orders/**"]
effect = "allow"

[[plugins.rbac.config.rules]]
roles = ["user"]
methods = ["GET"]
paths = ["/api/ro/**"]
effect = "allow"

[[routes]]
name = "all"
path_prefix = "/"
upstream = "echo"
chain = ["who", "rbac"]
"#,
        upstream = upstream.target()
    ))
    .await
}

const OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

fn body(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// The upstream saw `method`, none of the override headers and no `_method` parameter.
fn assert_upstream_ran(reply: &Reply, method: &str, query: Option<&str>, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", body(reply));
    let echo = reply.json();
    assert_eq!(echo["method"], method, "{what}");
    for header in OVERRIDE_HEADERS {
        assert!(
            echo["headers"][header].is_null(),
            "{what}: {header} reached the upstream"
        );
    }
    assert_eq!(echo["query"].as_str(), query, "{what}");
}

fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {}", body(reply));
    assert_eq!(reply.json()["error"], "forbidden", "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn override_is_ignored_and_removed_when_disabled() {
    let upstream = Upstream::echo("echo").await;
    let gateway = gateway(&upstream, false, false).await;
    let c = client();

    // A POST asking to be a DELETE is decided (and run) as the POST it is.
    for header in OVERRIDE_HEADERS {
        let reply = send(
            &c,
            Method::POST,
            &gateway.url("/api/orders/1"),
            &[(header, "DELETE")],
            "",
        )
        .await;
        assert_upstream_ran(&reply, "POST", None, header);
    }
    let reply = send(
        &c,
        Method::POST,
        &gateway.url("/api/orders/1?a=1&_method=DELETE&b=2"),
        &[],
        "",
    )
    .await;
    assert_upstream_ran(&reply, "POST", Some("a=1&b=2"), "_method");
    let reply = send(
        &c,
        Method::POST,
        &gateway.url("/api/orders/1?%5Fmethod=DELETE"),
        &[],
        "",
    )
    .await;
    assert_upstream_ran(&reply, "POST", None, "encoded _method");

    // A DELETE claiming to be a GET is still a DELETE.
    for header in OVERRIDE_HEADERS {
        let reply = send(
            &c,
            Method::DELETE,
            &gateway.url("/api/ro/1"),
            &[(header, "GET")],
            "",
        )
        .await;
        assert_forbidden(&reply, header);
    }
    let reply = send(
        &c,
        Method::DELETE,
        &gateway.url("/api/ro/1?_method=GET"),
        &[],
        "",
    )
    .await;
    assert_forbidden(&reply, "DELETE with _method=GET");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn override_is_decided_on_and_applied_when_enabled() {
    let upstream = Upstream::echo("echo").await;
    let gateway = gateway(&upstream, true, false).await;
    let c = client();

    for header in OVERRIDE_HEADERS {
        let reply = send(
            &c,
            Method::POST,
            &gateway.url("/api/orders/1"),
            &[(header, "DELETE")],
            "",
        )
        .await;
        assert_forbidden(&reply, header);
        let reply = send(
            &c,
            Method::POST,
            &gateway.url("/api/orders/1"),
            &[(header, "put")],
            "",
        )
        .await;
        assert_upstream_ran(&reply, "PUT", None, header);
    }
    let reply = send(
        &c,
        Method::POST,
        &gateway.url("/api/orders/1?_method=DELETE"),
        &[],
        "",
    )
    .await;
    assert_forbidden(&reply, "_method=DELETE");
    let reply = send(
        &c,
        Method::POST,
        &gateway.url("/api/orders/1?_method=PUT&x=1"),
        &[],
        "",
    )
    .await;
    assert_upstream_ran(&reply, "PUT", Some("x=1"), "_method=PUT");

    // Conflicting overrides are refused rather than guessed at.
    let reply = send(
        &c,
        Method::POST,
        &gateway.url("/api/orders/1?_method=PUT"),
        &[("x-http-method-override", "DELETE")],
        "",
    )
    .await;
    assert_eq!(reply.status, 400, "{}", body(&reply));
    assert_eq!(reply.json()["error"], "bad_request");

    // Only a POST can be overridden: a GET stays a GET (and loses the header).
    let reply = send(
        &c,
        Method::GET,
        &gateway.url("/api/ro/1"),
        &[("x-http-method-override", "DELETE")],
        "",
    )
    .await;
    assert_upstream_ran(&reply, "GET", None, "GET with override");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn head_follows_get_only_when_configured() {
    let upstream = Upstream::echo("echo").await;
    let c = client();

    let strict = gateway(&upstream, false, false).await;
    let reply = send(&c, Method::HEAD, &strict.url("/api/ro/1"), &[], "").await;
    assert_eq!(reply.status, 403, "HEAD without head_as_get");
    let reply = send(&c, Method::GET, &strict.url("/api/ro/1"), &[], "").await;
    assert_eq!(reply.status, 200, "GET is allowed");
    strict.shutdown().await;

    let lenient = gateway(&upstream, false, true).await;
    let reply = send(&c, Method::HEAD, &lenient.url("/api/ro/1"), &[], "").await;
    assert_eq!(reply.status, 200, "HEAD with head_as_get");
    let reply = send(&c, Method::HEAD, &lenient.url("/admin"), &[], "").await;
    assert_eq!(reply.status, 403, "HEAD where GET is not allowed");
    lenient.shutdown().await;
}
