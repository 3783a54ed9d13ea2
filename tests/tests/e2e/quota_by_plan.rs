//! An operator sells plans with request quotas: each consumer gets its plan's number of requests
//! per UTC period, sees what is left in response headers, is refused with 429 (naming the plan
//! and when the quota resets) beyond it, and consumers count independently. Unknown plans and
//! unidentified requests are handled as configured, counts are exact under concurrency and hold
//! across a hot swap.

#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use tollgate_tests::{Gateway, Upstream, admin_reload, get};

/// Routes `/<who>/...` identify the caller as an auth plugin would (a `recorder` setting the
/// `consumer` and `plan` context keys) and then run the quota.
fn config(upstream: &str, free_requests: u64, unknown_plan: &str) -> String {
    let callers = [
        ("alice", "alice", "free"),
        ("bob", "bob", "free"),
        ("carol", "carol", "pro"),
        ("dave", "dave", "gold"),
    ];
    let mut plugins = String::new();
    let mut routes = String::new();
    for (route, consumer, plan) in callers {
        plugins.push_str(&format!(
            "[plugins.who-{route}]\nmodule = \"{{fixtures}}/recorder.wasm\"\n\
             config = {{ name = \"{route}\", set_context = {{ consumer = \"{consumer}\", plan = \"{plan}\" }} }}\n\n"
        ));
        routes.push_str(&format!(
            "[[routes]]\nname = \"{route}\"\npath_prefix = \"/{route}\"\nupstream = \"echo\"\n\
             chain = [\"who-{route}\", \"quota\"]\n\n"
        ));
    }
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.quota]
module = "quota"
pool_size = 4
[plugins.quota.config]
plans = {{ free = {{ requests = {free_requests}, period = "day" }}, pro = {{ requests = 5, period = "month" }} }}
default_plan = "free"
unknown_plan = "{unknown_plan}"

{plugins}
[[routes]]
name = "anonymous"
path_prefix = "/anonymous"
upstream = "echo"
chain = ["quota"]

{routes}
"#
    )
}

fn next_utc_midnight() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now / 86_400 + 1) * 86_400
}

#[tokio::test(flavor = "multi_thread")]
async fn each_consumer_gets_its_plans_requests_then_429() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 3, "deny")).await;
    let midnight = next_utc_midnight();

    for remaining in ["2", "1", "0"] {
        let reply = get(&gateway.url("/alice/x"), &[]).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("x-quota-limit"), Some("3"));
        assert_eq!(reply.header("x-quota-remaining"), Some(remaining));
        let reset = reply.header("x-quota-reset").unwrap();
        assert!(reset.ends_with("T00:00:00Z"), "reset {reset}");
    }

    let refused = get(&gateway.url("/alice/x"), &[]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), Some("application/json"));
    let body = refused.json();
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["limit"], 3);
    let reset = body["reset"].as_str().unwrap();
    assert!(reset.ends_with("T00:00:00Z"), "reset {reset}");
    assert_eq!(refused.header("x-quota-reset"), Some(reset));
    assert_eq!(refused.header("x-quota-remaining"), Some("0"));
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        retry_after >= 1 && now + retry_after <= midnight + 1,
        "retry-after {retry_after}"
    );
    assert_eq!(get(&gateway.url("/alice/x"), &[]).await.status, 429);

    // Bob is on the same plan and counts on his own.
    for remaining in ["2", "1", "0"] {
        let reply = get(&gateway.url("/bob/x"), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-quota-remaining"), Some(remaining));
    }
    assert_eq!(get(&gateway.url("/bob/x"), &[]).await.status, 429);

    // Carol's plan is monthly and larger; its reset is the first of next month.
    for _ in 0..5 {
        let reply = get(&gateway.url("/carol/x"), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-quota-limit"), Some("5"));
    }
    let refused = get(&gateway.url("/carol/x"), &[]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["plan"], "pro");
    let reset = refused.json()["reset"].as_str().unwrap().to_owned();
    assert!(reset.ends_with("-01T00:00:00Z"), "reset {reset}");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_plans_and_anonymous_requests_are_refused_by_default() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 3, "deny")).await;

    let reply = get(&gateway.url("/dave/x"), &[]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["error"], "unknown_plan");
    assert_eq!(reply.json()["plan"], "gold");

    let reply = get(&gateway.url("/anonymous/x"), &[]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["error"], "quota_no_consumer");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_plan_can_count_against_the_default_plan() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 2, "default")).await;
    for remaining in ["1", "0"] {
        let reply = get(&gateway.url("/dave/x"), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-quota-remaining"), Some(remaining));
    }
    let refused = get(&gateway.url("/dave/x"), &[]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["plan"], "free");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_admit_exactly_the_quota() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 10, "deny")).await;
    let url = gateway.url("/alice/x");
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&url, &[]).await })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for t in tasks {
        let reply = t.await.unwrap();
        statuses.push(reply.status.as_u16());
        if reply.status == 200 {
            remaining.push(
                reply
                    .header("x-quota-remaining")
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        (0..10).collect::<Vec<_>>(),
        "each admitted request saw its own count"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_hold_across_a_hot_swap_and_refusals_are_not_counted() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 3, "deny")).await;
    for _ in 0..3 {
        assert_eq!(get(&gateway.url("/alice/x"), &[]).await.status, 200);
    }
    for _ in 0..4 {
        assert_eq!(get(&gateway.url("/alice/x"), &[]).await.status, 429);
    }

    // Upgrade the plan while serving: alice has used 3 (the refusals did not count), so 2 more.
    gateway.write_config(&config(&upstream.target(), 5, "deny"));
    let reload = admin_reload(&gateway).await;
    assert_eq!(
        reload.status,
        200,
        "{}",
        String::from_utf8_lossy(&reload.body)
    );
    for remaining in ["1", "0"] {
        let reply = get(&gateway.url("/alice/x"), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-quota-limit"), Some("5"));
        assert_eq!(reply.header("x-quota-remaining"), Some(remaining));
    }
    assert_eq!(get(&gateway.url("/alice/x"), &[]).await.status, 429);
    gateway.shutdown().await;
}
