//! A canary that traps on 20 % of its requests (those with `x-trap`), split by a user header at
//! 10 %, is taken out by the error-rate rule: no stable request fails, the failures (fail-closed)
//! are the canary slice's trapping requests only, or (fail-open) none at all; the webhook hears
//! of it, and the canary stays out. Prints the rollback latency: from the first bad response the
//! client read to the canary being out of service.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use tollgate_tests::{Gateway, Upstream, client, send};

use crate::rollout_support::{admin_plugin, config};

const USERS: usize = 200;

fn trap_config(target: &str, on_error: &str, webhook: &str) -> String {
    config(
        "",
        target,
        &format!(
            r#"
[plugins.trap]
module = "{{fixtures}}/trapper.wasm"
on_error = "{on_error}"
[plugins.trap.config]
trigger_header = "x-never"
tag = "stable"
[plugins.trap.canary]
module = "{{fixtures}}/trapper.wasm"
percent = 10
split = "header:x-user"
[plugins.trap.canary.config]
trigger_header = "x-trap"
tag = "canary"
[plugins.trap.canary.rollback]
max_error_rate_points = 5
min_requests = 20
window_ms = 30000
webhook = "{webhook}"

[[routes]]
name = "r"
path_prefix = "/"
upstream = "up"
chain = ["trap"]
"#
        ),
    )
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Run the scenario with `on_error`; returns the measured rollback latency in ms.
async fn scenario(on_error: &str) -> i64 {
    let upstream = Upstream::echo("up").await;
    let events: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = events.clone();
    let hook = Upstream::start(Arc::new(move |req: http::Request<Bytes>| {
        let sink = sink.clone();
        Box::pin(async move {
            if let Ok(v) = serde_json::from_slice(req.body()) {
                sink.lock().unwrap().push(v);
            }
            http::Response::new(Full::new(Bytes::new()))
        })
    }))
    .await;
    let webhook = format!("http://{}/hook", hook.target());
    let gateway = Gateway::start(&trap_config(&upstream.target(), on_error, &webhook)).await;
    let admin = gateway.admin.unwrap();
    let client = client();

    // The version of each user, from a request that does not trap.
    let mut version: BTreeMap<usize, String> = BTreeMap::new();
    let mut failures_by_version: BTreeMap<String, usize> = BTreeMap::new();
    let mut first_bad: Option<u64> = None;
    let mut requests = 0;
    let mut skipped = 0;
    // A first round without the trigger: the version each user is on.
    for i in 0..USERS {
        let user = format!("u{i}");
        let reply = send(
            &client,
            http::Method::GET,
            &gateway.url("/x"),
            &[("x-user", user.as_str())],
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, 200);
        requests += 1;
        let tag = reply.json()["headers"]["x-trapper"][0]
            .as_str()
            .unwrap()
            .to_owned();
        version.insert(i, tag);
    }
    for round in 0..10 {
        for i in 0..USERS {
            let user = format!("u{i}");
            // Every fifth request of a user carries the trap trigger: 20 % of them.
            let trap = (round + i) % 5 == 0;
            let mut headers = vec![("x-user", user.as_str())];
            if trap {
                headers.push(("x-trap", "1"));
            }
            let reply = send(
                &client,
                http::Method::GET,
                &gateway.url("/x"),
                &headers,
                Bytes::new(),
            )
            .await;
            requests += 1;
            if reply.status == 200 {
                let tag = reply.json()["headers"]["x-trapper"][0]
                    .as_str()
                    .unwrap_or("none")
                    .to_owned();
                // Before the rollback a user keeps one version; after it, stable. Fail-open
                // skips a trapping canary: its tag is missing.
                let known = &version[&i];
                if tag == "none" {
                    assert!(trap && known == "canary" && on_error == "fail-open", "u{i}");
                    skipped += 1;
                } else {
                    assert!(
                        *known == tag || tag == "stable",
                        "u{i} went from {known} to {tag}"
                    );
                }
            } else {
                assert_eq!(
                    reply.status,
                    500,
                    "{}",
                    String::from_utf8_lossy(&reply.body)
                );
                assert!(trap, "a request without the trigger failed");
                first_bad.get_or_insert_with(now_ms);
                *failures_by_version.entry(format!("u{i}")).or_default() += 1;
            }
        }
    }
    let entry = admin_plugin(admin, "trap").await;
    let canary = &entry["canary"];
    assert_eq!(canary["status"], "rolled_back", "{entry}");
    let reason = canary["reason"].as_str().unwrap();
    assert!(reason.contains("failure rate"), "{reason}");
    let out_at = canary["changed_at_unix_ms"].as_u64().unwrap();

    // The failures came from the canary's slice only (fail-closed), or there were none.
    for user in failures_by_version.keys() {
        let i: usize = user[1..].parse().unwrap();
        assert_ne!(
            version.get(&i).map(String::as_str),
            Some("stable"),
            "{user} is on stable and failed"
        );
    }
    let failed: usize = failures_by_version.values().sum();
    let canary_users = version.values().filter(|v| *v == "canary").count();
    println!(
        "{on_error}: {requests} requests, {canary_users} of {USERS} users first on the canary, {failed} failed requests; reason: {reason}"
    );
    let latency = match first_bad {
        Some(t) => out_at as i64 - t as i64,
        None => {
            assert_eq!(
                on_error, "fail-open",
                "fail-closed canary never failed a request"
            );
            0
        }
    };
    if on_error == "fail-open" {
        assert_eq!(failed, 0, "fail-open skips the trapping canary");
        assert!(skipped > 0, "the canary trapped and was skipped");
        println!("fail-open: {skipped} trapping canary calls skipped, every request answered 200");
    } else {
        assert!(failed > 0);
        println!(
            "fail-closed rollback latency (first bad response read by the client → canary out of service): {latency} ms"
        );
    }

    // The webhook heard of it, off the request path.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while events.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "canary_rolled_back");
    assert_eq!(events[0]["plugin"], "trap");
    gateway.shutdown().await;
    latency
}

#[tokio::test]
async fn fail_closed_trapping_canary_is_rolled_back_and_only_its_slice_failed() {
    scenario("fail-closed").await;
}

#[tokio::test]
async fn fail_open_trapping_canary_is_rolled_back_and_no_request_failed() {
    scenario("fail-open").await;
}
