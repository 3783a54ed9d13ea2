//! Optional backends that fail in each way (an error status, a body that is not JSON, a body
//! over the gateway's response limit, an upstream that is down) leave a marker each, and the
//! client still gets the rest with `X-Tollgate-Partial: true`.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use std::time::Duration;

use aggregate_support::{Fixed, gateway, text};
use serde_json::json;
use tollgate_tests::{dead_port, get};

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_failure_leaves_its_own_marker() {
    let users = Fixed::json(json!({ "id": 7 })).await;
    let busy = Fixed::start(503, "application/json", "{}".into(), Duration::ZERO).await;
    let html = Fixed::start(200, "text/html", "<h1>hello</h1>".into(), Duration::ZERO).await;
    let big = Fixed::json(json!({ "blob": "x".repeat(4096) })).await;
    let down = dead_port().await;
    let gw = gateway(
        &[
            ("users", users.target()),
            ("busy", busy.target()),
            ("html", html.target()),
            ("big", big.target()),
            ("down", down.to_string()),
        ],
        &["users", "busy", "html", "big", "down"],
        r#"errors_key = "missing"
backends = [
  { name = "user", upstream = "users", path = "/u" },
  { name = "busy", upstream = "busy", path = "/b", required = false },
  { name = "html", upstream = "html", path = "/h", required = false },
  { name = "big", upstream = "big", path = "/g", required = false },
  { name = "down", upstream = "down", path = "/d", required = false },
]"#,
        ("", &[]),
        "[limits]\nmax_response_body_bytes = 1024\n",
    )
    .await;

    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-tollgate-partial"), Some("true"));
    let body = reply.json();
    assert_eq!(body["user"], json!({ "id": 7 }));
    for name in ["busy", "html", "big", "down"] {
        assert_eq!(body[name], json!(null), "{name}");
    }
    let missing = &body["missing"];
    assert_eq!(
        missing["busy"],
        json!({ "error": "upstream `busy` answered 503", "status": 503 })
    );
    let html_error = missing["html"]["error"].as_str().unwrap();
    assert!(html_error.contains("not JSON"), "{html_error}");
    assert_eq!(missing["html"]["status"], 200);
    assert_eq!(
        missing["big"]["error"],
        "upstream `big` sent a response body larger than 1024 bytes (limits.max_response_body_bytes)"
    );
    assert_eq!(missing["down"]["error"], "upstream `down` is unreachable");
    assert_eq!(missing.as_object().unwrap().len(), 4, "{missing}");
}
