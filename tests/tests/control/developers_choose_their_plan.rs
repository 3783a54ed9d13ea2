//! A developer picks a plan in the portal: the plans offered are the current revision's quota
//! plans, the form needs the session's CSRF token (a forged POST changes nothing), an unknown
//! plan is refused, and the chosen plan reaches the control plane's consumer and, within 2 s,
//! a following gateway's quota plugin.

use std::time::{Duration, Instant};

use http::Method;
use tollgate_tests::{Reply, Upstream, get};

use crate::portal_refuses_forgery_fixation_and_xss::{Browser, text};
use crate::support::{ADMIN, ControlPlane, Database, Node, apply};

/// A fleet config with API keys from the control plane and quotas by plan: `tiny` (1 request a
/// day) and `big` (100 a day).
pub const QUOTA_CONFIG: &str = r#"
[gateway]
plugin_dir = "{plugins}"
cache_dir = "{cache}"

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["UPSTREAM"]

[plugins.auth]
module = "auth"
[plugins.auth.config]
api_key = { header = "x-api-key", control = true }

[plugins.quota]
module = "quota"
[plugins.quota.config]
plans = { tiny = { requests = 1, period = "day" }, big = { requests = 100, period = "day" } }

[plugins.meter]
module = "meter"

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
chain = ["auth", "quota", "meter"]
"#;

/// The key shown once on the new-key page.
fn new_key(r: &Reply) -> String {
    let page = text(r);
    let at = page
        .find("id=\"new-key\"")
        .expect("the new key on the page");
    let rest = &page[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find('<').unwrap();
    rest[start..end].to_owned()
}

async fn plan_of(cp: &ControlPlane, name: &str) -> serde_json::Value {
    cp.api(Method::GET, &format!("/v1/consumers/{name}"), ADMIN, None)
        .await
        .json()["plan"]
        .clone()
}

/// GET with the key until `done` holds for the answer (at most 2 s).
async fn until(url: &str, key: &str, done: impl Fn(&Reply) -> bool) -> (Reply, Duration) {
    let started = Instant::now();
    loop {
        let r = get(url, &[("x-api-key", key)]).await;
        if done(&r) {
            return (r, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "last answer {} {}",
            r.status,
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_developer_picks_a_plan_and_the_gateway_enforces_it() {
    let upstream = Upstream::echo("app").await;
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    let operator = cp.token("ops", "operator").await;
    let node_token = cp.token("fleet", "node").await;
    let dir = tempfile::tempdir().unwrap();
    let config = tollgate_tests::expand(QUOTA_CONFIG).replace("UPSTREAM", &upstream.target());
    apply(&cp, &operator, dir.path(), &config, "quotas");
    let node = Node::start(&cp, &node_token, "gw-plans");

    let mut dev = Browser::new(&cp);
    assert_eq!(dev.sign_up("ada", "Ada").await.status, 303);
    let key = new_key(&dev.submit("/portal/keys", "/portal/keys", &[]).await);
    let page = text(&dev.get("/portal/plan").await);
    for offered in [
        "tiny",
        "1 requests per day",
        "big",
        "100 requests per day",
        "X-Quota-Remaining",
    ] {
        assert!(page.contains(offered), "{offered:?} not offered:\n{page}");
    }
    assert!(page.contains("id=\"current-plan\">none<"), "{page}");

    // Forged (no token) and unknown plans change nothing.
    let forged = dev
        .request(Method::POST, "/portal/plan", &[("plan", "big")])
        .await;
    assert_eq!(forged.status, 403, "{}", text(&forged));
    let unknown = dev
        .submit("/portal/plan", "/portal/plan", &[("plan", "gold")])
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        text(&unknown).contains("not offered (offered: big, tiny)"),
        "{}",
        text(&unknown)
    );
    assert!(plan_of(&cp, "ada").await.is_null());

    let chosen = dev
        .submit("/portal/plan", "/portal/plan", &[("plan", "tiny")])
        .await;
    assert_eq!(chosen.status, 303, "{}", text(&chosen));
    assert_eq!(plan_of(&cp, "ada").await, "tiny");
    assert!(text(&dev.get("/portal/plan").await).contains("id=\"current-plan\">tiny<"));
    let audit = text(&cp.api(Method::GET, "/v1/audit", ADMIN, None).await);
    assert!(
        audit.contains("consumer.plan") && audit.contains("developer:ada"),
        "{audit}"
    );

    // The gateway counts the developer on `tiny`: one request a day.
    let url = node.url("/things");
    let (first, took) = until(&url, &key, |r| r.status != 401).await;
    assert_eq!(first.status, 200, "{}", text(&first));
    assert_eq!(first.header("x-quota-limit"), Some("1"));
    println!("key and plan reached the gateway in {took:?}");
    assert_eq!(get(&url, &[("x-api-key", &key)]).await.status, 429);

    // Moving to `big` reaches the gateway within 2 s, with the day's count kept.
    let moved = dev
        .submit("/portal/plan", "/portal/plan", &[("plan", "big")])
        .await;
    assert_eq!(moved.status, 303);
    let (r, took) = until(&url, &key, |r| r.status == 200).await;
    assert_eq!(r.header("x-quota-limit"), Some("100"));
    assert_eq!(r.header("x-quota-remaining"), Some("98"));
    println!("plan change reached the gateway in {took:?}");
    assert_eq!(plan_of(&cp, "ada").await, "big");

    // The plan page shows what the gateways' usage reports counted against `big` today: the
    // requests above (the refused ones too), and what is left of the 100.
    let cell = |page: &str, class: &str| -> Option<i64> {
        let at = page.find(&format!("<td class=\"{class}\">"))?;
        let rest = &page[at..];
        rest[rest.find('>')? + 1..rest.find("</td>")?].parse().ok()
    };
    let started = Instant::now();
    let (used, left) = loop {
        let page = text(&dev.get("/portal/plan").await);
        if let (Some(used), Some(left)) = (cell(&page, "used"), cell(&page, "left"))
            && used >= 3
        {
            break (used, left);
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the plan page never counted the requests:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(left, 100 - used, "used {used}, left {left}");
    println!(
        "quota used {used}, left {left}, shown after {:?}",
        started.elapsed()
    );
}
