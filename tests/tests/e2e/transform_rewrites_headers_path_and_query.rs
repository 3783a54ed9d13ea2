//! An operator reshapes requests and responses with the `transform` plugin: request headers are
//! removed, renamed, set and added; the path loses a prefix, gets another one, or is rewritten
//! by a regex with captures; query parameters are removed, renamed, set and added; response
//! headers are reshaped too. Paths that a rule does not match pass untouched.

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

[plugins.head]
module = "{{plugins}}/transform.wasm"
[plugins.head.config.request.headers]
remove = ["x-debug"]
rename = {{ "x-user" = "x-legacy-user" }}
set = {{ "x-gateway" = "tollgate" }}
add = {{ "x-tag" = ["a", "b"] }}
[plugins.head.config.request.path]
strip_prefix = "/api"
[plugins.head.config.request.query]
remove = ["debug"]
rename = {{ "q" = "search" }}
set = {{ "page" = "1" }}
add = {{ "src" = "gw gate" }}
[plugins.head.config.response.headers]
remove = ["server"]
rename = {{ "x-upstream-id" = "x-id" }}
set = {{ "cache-control" = "no-store" }}

[plugins.versioned]
module = "{{plugins}}/transform.wasm"
config = {{ request.path = {{ prefix = "/v1/shop", replace = "/shop/v2" }} }}

[plugins.regex]
module = "{{plugins}}/transform.wasm"
config = {{ request.path = {{ regex = '^/users/(?P<id>\d+)/orders/(\d+)$', replace = '/orders/$2/by-user/${{id}}' }} }}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = ["head"]

[[routes]]
name = "versioned"
path_prefix = "/v1"
upstream = "echo"
chain = ["versioned"]

[[routes]]
name = "users"
path_prefix = "/users"
upstream = "echo"
chain = ["regex"]
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_response_heads_are_reshaped() {
    let upstream = Upstream::start(std::sync::Arc::new(|req| {
        Box::pin(async move {
            let mut resp = tollgate_tests::echo_response("echo", &req);
            let h = resp.headers_mut();
            h.insert("server", "legacy/1.0".parse().unwrap());
            h.insert("x-upstream-id", "42".parse().unwrap());
            resp
        })
    }))
    .await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let reply = get(
        &gateway.url("/api/orders?q=shoes&debug=1&page=7&keep=a%20b"),
        &[("x-debug", "1"), ("x-user", "ann"), ("x-gateway", "client")],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["path"], "/orders");
    assert_eq!(echo["query"], "search=shoes&page=1&keep=a%20b&src=gw+gate");
    let headers = &echo["headers"];
    assert!(headers["x-debug"].is_null(), "{headers}");
    assert!(headers["x-user"].is_null(), "{headers}");
    assert_eq!(headers["x-legacy-user"][0], "ann");
    assert_eq!(headers["x-gateway"], serde_json::json!(["tollgate"]));
    assert_eq!(headers["x-tag"], serde_json::json!(["a", "b"]));

    assert_eq!(reply.header("server"), None);
    assert_eq!(reply.header("x-upstream-id"), None);
    assert_eq!(reply.header("x-id"), Some("42"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    // The prefix matches on a segment boundary only; the bare prefix becomes `/`.
    let echo = get(&gateway.url("/api"), &[]).await.json();
    assert_eq!(echo["path"], "/");
    assert_eq!(echo["query"], "page=1&src=gw+gate");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prefix_and_regex_rewrites() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target())).await;

    let echo = get(&gateway.url("/v1/shop/cart/3?x=1"), &[]).await.json();
    assert_eq!(echo["path"], "/shop/v2/cart/3");
    assert_eq!(echo["query"], "x=1", "no query rules: query untouched");
    let echo = get(&gateway.url("/v1/shopping"), &[]).await.json();
    assert_eq!(echo["path"], "/v1/shopping", "not on a segment boundary");

    let echo = get(&gateway.url("/users/42/orders/7"), &[]).await.json();
    assert_eq!(echo["path"], "/orders/7/by-user/42");
    let echo = get(&gateway.url("/users/42/orders/x"), &[]).await.json();
    assert_eq!(echo["path"], "/users/42/orders/x", "no match: unchanged");
    gateway.shutdown().await;
}
