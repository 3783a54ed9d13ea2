//! A plugin that sets 30,000 request headers, answers with 30,000 headers or adds them to the
//! response gets an error past `[limits]` (`max_header_count`, here 50; `max_header_bytes`)
//! instead of panicking the host; the upstream and the client never see more than the limits
//! allow (plus the few forwarding headers the gateway itself adds).

use http::Method;
use tollgate_tests::{Upstream, client, get, send};

use crate::sandbox_support::{gateway, limit_hits};

const PLUGINS: &str = r#"
[limits]
max_header_count = 50

[plugins.hdr-report]
module = "{fixtures}/abuser.wasm"
timeout_ms = 10000
config = { mode = "set-headers", report = true }

[plugins.hdr-forward]
module = "{fixtures}/abuser.wasm"
timeout_ms = 10000
config = { mode = "set-headers" }

[plugins.hdr-respond]
module = "{fixtures}/abuser.wasm"
timeout_ms = 10000
config = { mode = "respond-headers" }

[plugins.hdr-response]
module = "{fixtures}/abuser.wasm"
config = { mode = "response-headers", count = 500 }

[[routes]]
name = "report"
path_prefix = "/report"
upstream = "up"
chain = ["hdr-report"]

[[routes]]
name = "forward"
path_prefix = "/forward"
upstream = "up"
chain = ["hdr-forward"]

[[routes]]
name = "respond"
path_prefix = "/respond"
upstream = "up"
chain = ["hdr-respond"]

[[routes]]
name = "response"
path_prefix = "/response"
upstream = "up"
chain = ["hdr-response"]
"#;

#[tokio::test]
async fn thirty_thousand_headers_get_errors_not_a_panic() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(&upstream, PLUGINS).await;
    let client = client();

    // The plugin sees the refusals: most of its 30,000 set-header calls fail with the reason.
    let reply = send(&client, Method::GET, &gateway.url("/report"), &[], "").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let body = reply.json();
    assert_eq!(
        body["ok"].as_u64().unwrap() + body["errors"].as_u64().unwrap(),
        30_000
    );
    assert!(body["errors"].as_u64().unwrap() >= 29_950, "{body}");
    assert!(
        body["first_error"]
            .as_str()
            .unwrap()
            .contains("too many headers"),
        "{body}"
    );

    // What reaches the upstream stays within the limit.
    let reply = send(&client, Method::GET, &gateway.url("/forward"), &[], "").await;
    assert_eq!(reply.status, 200);
    let seen = reply.json()["headers"].as_object().unwrap().len();
    assert!(seen <= 60, "the upstream saw {seen} headers");

    // A reply with 30,000 headers is refused with a 500 naming the plugin.
    let reply = send(&client, Method::GET, &gateway.url("/respond"), &[], "").await;
    assert_eq!(reply.status, 500);
    let body = reply.json();
    assert_eq!(body["plugin"], "hdr-respond");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at most 50 headers"),
        "{body}"
    );

    // Response headers added in the response phase are capped too.
    let reply = send(&client, Method::GET, &gateway.url("/response"), &[], "").await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers.len() <= 60, "{} headers", reply.headers.len());
    assert!(
        reply
            .header("x-abuse-error")
            .unwrap_or("")
            .contains("too many headers"),
        "{:?}",
        reply.headers.get("x-abuse-result")
    );

    assert!(limit_hits(&gateway, "hdr-report", "headers").await >= 29_950.0);
    assert!(limit_hits(&gateway, "hdr-respond", "headers").await >= 1.0);
    // The gateway still serves.
    assert_eq!(get(&gateway.url("/report"), &[]).await.status, 200);
}
