//! An operator marks an API version deprecated with a sunset date: every response of its route
//! (the upstream's answers, a 404 from the upstream, a plugin's reply, the gateway's own 502)
//! carries `Deprecation`, `Sunset` and a `Link; rel="deprecation"`; other routes do not; an
//! upstream's own `Sunset` is kept; the admin API shows them; a hot reload that drops the setting drops the headers.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use tollgate_tests::{Gateway, Upstream, admin_reload, dead_port, echo_response, get};

/// `2026-06-30T00:00:00Z` in Unix seconds.
const DEPRECATED: &str = "@1782777600";
const SUNSET: &str = "Fri, 01 Jan 2027 00:00:00 GMT";
const LINK: &str = "<https://example.com/docs/v1>; rel=\"deprecation\"";

fn config(upstream: &str, dead: &str, deprecated: bool) -> String {
    let settings = if deprecated {
        // A quoted date and a TOML date-time are both accepted.
        "deprecated = \"2026-06-30T02:00:00+02:00\"\nsunset = 2027-01-01T00:00:00Z\n\
         deprecation_link = \"https://example.com/docs/v1\""
    } else {
        ""
    };
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.api]
targets = ["{upstream}"]

[upstreams.down]
targets = ["{dead}"]

[plugins.gate]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "gate", respond_status = 403, respond_body = '{{"error":"blocked"}}', respond_if_header = "x-block" }}

[[routes]]
name = "v1"
path_prefix = "/v1"
upstream = "api"
chain = ["gate"]
{settings}

[[routes]]
name = "v1-down"
path_prefix = "/v1/down"
upstream = "down"
{settings}

[[routes]]
name = "v2"
path_prefix = "/v2"
upstream = "api"
"#
    )
}

fn assert_deprecated(reply: &tollgate_tests::Reply, what: &str) {
    assert_eq!(reply.header("deprecation"), Some(DEPRECATED), "{what}");
    assert_eq!(reply.header("sunset"), Some(SUNSET), "{what}");
    assert_eq!(reply.header("link"), Some(LINK), "{what}");
}

fn assert_plain(reply: &tollgate_tests::Reply, what: &str) {
    for name in ["deprecation", "sunset", "link"] {
        assert_eq!(reply.header(name), None, "{what}: {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deprecated_route_announces_its_sunset_until_a_reload_lifts_it() {
    let upstream = Upstream::start(Arc::new(|req| {
        Box::pin(async move {
            let mut response = echo_response("api", &req);
            let path = req.uri().path();
            if path.ends_with("/missing") {
                *response.status_mut() = StatusCode::NOT_FOUND;
            }
            if path.ends_with("/own-sunset") {
                response.headers_mut().insert(
                    "sunset",
                    HeaderValue::from_static("Sat, 01 Jan 2028 00:00:00 GMT"),
                );
            }
            response
        })
    }))
    .await;
    let dead = dead_port().await.to_string();
    let gateway = Gateway::start(&config(&upstream.target(), &dead, true)).await;

    let ok = get(&gateway.url("/v1/users"), &[]).await;
    assert_eq!(ok.status, 200);
    assert_deprecated(&ok, "upstream answer");

    let missing = get(&gateway.url("/v1/missing"), &[]).await;
    assert_eq!(missing.status, 404);
    assert_deprecated(&missing, "upstream 404");

    let blocked = get(&gateway.url("/v1/users"), &[("x-block", "1")]).await;
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.header("x-responded-by"), Some("gate"));
    assert_deprecated(&blocked, "plugin reply");

    let down = get(&gateway.url("/v1/down"), &[]).await;
    assert_eq!(down.status, 502);
    assert_deprecated(&down, "gateway error after routing");

    // The upstream knows its own schedule: its Sunset is kept, the rest is added.
    let own = get(&gateway.url("/v1/own-sunset"), &[]).await;
    assert_eq!(own.header("sunset"), Some("Sat, 01 Jan 2028 00:00:00 GMT"));
    assert_eq!(own.header("deprecation"), Some(DEPRECATED));

    assert_plain(&get(&gateway.url("/v2/users"), &[]).await, "plain route");
    // No route, so no route's headers.
    let unrouted = get(&gateway.url("/v3"), &[]).await;
    assert_eq!(unrouted.status, 404);
    assert_plain(&unrouted, "no route");

    // The admin API shows the headers the route adds.
    let admin = gateway.admin.unwrap();
    let shown = get(&format!("http://{admin}/admin/config"), &[])
        .await
        .json();
    let v1 = &shown["routes"][0];
    assert_eq!(v1["name"], "v1", "{shown}");
    assert_eq!(v1["deprecation"]["deprecation"], DEPRECATED, "{shown}");
    assert_eq!(v1["deprecation"]["sunset"], SUNSET, "{shown}");
    assert_eq!(v1["deprecation"]["link"], LINK, "{shown}");
    assert!(shown["routes"][2].get("deprecation").is_none(), "{shown}");

    gateway.write_config(&config(&upstream.target(), &dead, false));
    assert_eq!(admin_reload(&gateway).await.status, 200);
    let after = get(&gateway.url("/v1/users"), &[]).await;
    assert_eq!(after.status, 200);
    assert_plain(&after, "after the reload");
    assert_plain(
        &get(&gateway.url("/v1/down"), &[]).await,
        "502 after the reload",
    );
}
