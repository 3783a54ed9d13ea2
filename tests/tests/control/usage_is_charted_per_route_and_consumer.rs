//! Usage analytics end to end: a real gateway follows a real control plane, two consumers call
//! two routes (some answered 503 by the upstream, one request without a key), and within
//! seconds the control plane has the counts per route and consumer (`GET /v1/usage/minutes`),
//! the dashboard's usage page shows them per route and per consumer, and the fleet page shows
//! the gateway's requests/s. On PostgreSQL: schema 3 migrates, reports add up, pages render.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Response, StatusCode};
use http_body_util::Full;
use tollgate_tests::{Upstream, echo_response, get};

use crate::support::{ADMIN, ControlPlane, Database, Node, apply, now_ms};
use crate::usage_browser::{Browser, class_text};

/// Auth with keys from the control plane on two routes.
fn config(upstream: &str) -> String {
    tollgate_tests::expand(&format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{upstream}"]

[plugins.auth]
module = "auth"
[plugins.auth.config]
api_key = {{ header = "x-api-key", control = true }}

[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "app"
chain = ["auth"]

[[routes]]
name = "search"
path_prefix = "/search"
upstream = "app"
chain = ["auth"]
"#
    ))
}

/// An upstream answering 503 on paths that end in `/fail`, else echoing.
async fn upstream() -> Upstream {
    Upstream::start(Arc::new(|req| {
        Box::pin(async move {
            if req.uri().path().ends_with("/fail") {
                let mut r = Response::new(Full::new(bytes::Bytes::from_static(b"down")));
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                r
            } else {
                echo_response("app", &req)
            }
        })
    }))
    .await
}

/// (requests, errors, client errors) per (route, consumer) from the control plane's minutes.
async fn minutes(cp: &ControlPlane, since_ms: i64) -> HashMap<(String, String), (i64, i64, i64)> {
    let r = cp
        .api(
            Method::GET,
            &format!("/v1/usage/minutes?since_ms={since_ms}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut sums = HashMap::new();
    for row in r.json().as_array().unwrap() {
        let key = (
            row["route"].as_str().unwrap().to_owned(),
            row["consumer"].as_str().unwrap().to_owned(),
        );
        let slot: &mut (i64, i64, i64) = sums.entry(key).or_default();
        slot.0 += row["requests"].as_i64().unwrap();
        slot.1 += row["errors"].as_i64().unwrap();
        slot.2 += row["client_errors"].as_i64().unwrap();
    }
    sums
}

#[tokio::test]
async fn a_following_gateway_reports_usage_that_the_dashboard_charts() {
    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let app = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    apply(&cp, ADMIN, dir.path(), &config(&app.target()), "two routes");
    let (_, alice) = cp.consumer_with_key(ADMIN, "alice").await;
    let (_, bob) = cp.consumer_with_key(ADMIN, "bob").await;
    let node_token = cp.token("gw", "node").await;
    let node = Node::start(&cp, &node_token, "gw-1");
    let since = now_ms() - 60_000;
    // Keys reach the gateway with its first key sync; wait until alice is let in.
    let started = Instant::now();
    while get(&node.url("/orders/x"), &[("x-api-key", &alice)])
        .await
        .status
        != 200
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "alice's key never worked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sent = vec![(200, "orders", "alice")];
    for (path, key, want) in [
        ("/orders/1", &alice, 200),
        ("/orders/2", &alice, 200),
        ("/orders/3", &alice, 200),
        ("/orders/4", &alice, 200),
        ("/orders/fail", &alice, 503),
        ("/orders/fail", &alice, 503),
        ("/search/a", &bob, 200),
        ("/search/b", &bob, 200),
        ("/search/c", &bob, 200),
        ("/search/fail", &bob, 503),
    ] {
        let r = get(&node.url(path), &[("x-api-key", key)]).await;
        assert_eq!(r.status.as_u16(), want, "{path}");
        sent.push((
            want,
            if path.starts_with("/orders") {
                "orders"
            } else {
                "search"
            },
            if key == &alice { "alice" } else { "bob" },
        ));
    }
    assert_eq!(get(&node.url("/orders/5"), &[]).await.status, 401);
    // The waits for alice's key may have been refused (401) as anonymous requests: count them.
    let want_alice = (7, 2, 0);
    let want_bob = (4, 1, 0);
    let started = Instant::now();
    let sums = loop {
        let sums = minutes(&cp, since).await;
        let got = |r: &str, c: &str| {
            sums.get(&(r.to_owned(), c.to_owned()))
                .copied()
                .unwrap_or_default()
        };
        if got("orders", "alice") == want_alice
            && got("search", "bob") == want_bob
            && got("orders", "(anonymous)").2 >= 1
        {
            break sums;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "usage not reported in 15 s: {sums:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("usage reported after {:?}: {sums:?}", started.elapsed());
    let anonymous = sums[&("orders".to_owned(), "(anonymous)".to_owned())];
    assert_eq!(
        anonymous.0, anonymous.2,
        "anonymous requests are all 401s: {anonymous:?}"
    );

    let mut b = Browser::operator(&cp).await;
    let (status, page) = b.get("/dashboard/usage?route=orders").await;
    assert_eq!(status, 200, "{page}");
    let orders_total = 7 + anonymous.0;
    assert_eq!(
        class_text(&page, "usage-hour", "requests"),
        Some(orders_total.to_string().as_str()),
        "{page}"
    );
    assert_eq!(class_text(&page, "usage-hour", "errors"), Some("2"));
    assert_eq!(
        class_text(&page, "usage-month", "requests"),
        Some(orders_total.to_string().as_str())
    );
    assert!(
        page.contains("p99") && page.contains("<svg"),
        "latency chart"
    );
    assert!(page.contains("Where these figures come from"));
    let (_, page) = b.get("/dashboard/usage?consumer=bob").await;
    assert_eq!(
        class_text(&page, "usage-hour", "requests"),
        Some("4"),
        "{page}"
    );
    assert_eq!(class_text(&page, "usage-hour", "errors"), Some("1"));
    let (_, page) = b.get("/dashboard/usage?route=search&consumer=alice").await;
    assert_eq!(class_text(&page, "usage-hour", "requests"), Some("0"));
    let (_, page) = b.get("/dashboard/usage").await;
    let top = &page[page.find("id=\"top-day\"").unwrap()..];
    assert!(
        top.find(">alice<").unwrap() < top.find(">bob<").unwrap(),
        "alice is the top consumer"
    );
    let (status, _) = b.get("/dashboard/usage?colour=red").await;
    assert_eq!(status, 400, "an unknown parameter is refused");

    // The gateway's row appears with its first status report (after its first watch, ≤ 20 s).
    let started = Instant::now();
    let fleet = loop {
        let (_, fleet) = b.get("/dashboard").await;
        if fleet.contains("gw-1") {
            break fleet;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gw-1 never reported: {fleet}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let rate: f64 = class_text(&fleet, "gw-1", "rate").unwrap().parse().unwrap();
    assert!(rate > 0.0, "requests/s of gw-1: {fleet}");
    assert_ne!(class_text(&fleet, "gw-1", "error-rate"), Some("–"));
    println!("fleet: gw-1 at {rate} requests/s");
    drop(node);
}

#[tokio::test]
async fn usage_is_stored_and_shown_on_postgresql() {
    let db = Database::postgres();
    let cp = ControlPlane::start(&db);
    let node_token = cp.token("gw", "node").await;
    let minute = now_ms() - now_ms().rem_euclid(60_000);
    let row = |consumer: &str, requests: i64, errors: i64| {
        serde_json::json!({"minute_ms": minute, "route": "orders", "consumer": consumer,
            "requests": requests, "errors": errors, "client_errors": 0, "latency": format!("20:{requests}")})
    };
    for (node, rows) in [
        ("gw-a", vec![row("alice", 5, 1), row("bob", 2, 0)]),
        ("gw-b", vec![row("alice", 3, 1)]),
    ] {
        let body = serde_json::json!({"node": node, "rows": rows});
        let r = cp
            .api(Method::POST, "/v1/node/usage", &node_token, Some(body))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let bad = serde_json::json!({"node": "gw-a", "rows": [{"minute_ms": minute + 1, "route": "r", "consumer": "c",
        "requests": 1, "errors": 0, "client_errors": 0}]});
    let r = cp
        .api(Method::POST, "/v1/node/usage", &node_token, Some(bad))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        String::from_utf8_lossy(&r.body).contains("rows[0]"),
        "says which row"
    );
    let sums = minutes(&cp, minute).await;
    assert_eq!(sums[&("orders".to_owned(), "alice".to_owned())], (8, 2, 0));
    assert_eq!(sums[&("orders".to_owned(), "bob".to_owned())], (2, 0, 0));
    let mut b = Browser::operator(&cp).await;
    let (status, page) = b.get("/dashboard/usage?route=orders").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(class_text(&page, "usage-hour", "requests"), Some("10"));
    assert_eq!(class_text(&page, "usage-month", "errors"), Some("2"));
    let (_, page) = b.get("/dashboard/usage?consumer=alice").await;
    assert_eq!(class_text(&page, "usage-hour", "requests"), Some("8"));
    let (status, _) = b.get("/dashboard").await;
    assert_eq!(status, 200);
}
