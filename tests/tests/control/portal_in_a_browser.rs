//! The developer portal and the operator dashboard in a real browser (Debian's Chromium driven
//! by playwright-core from `tests/browser/portal.mjs`): a developer signs up, creates a key,
//! calls a gateway that follows the control plane with it, sees the calls in the usage chart,
//! revokes the key and the gateway refuses it within 2 s; an operator applies a config change
//! and rolls it back, and sees the calls on the usage page and a reported spike on the alerts
//! page; a viewer sees no buttons and a forged POST is refused with 403.
//! Screenshots go to target/screenshots/.
//!
//! Needs `chromium` (`apt-get install -y chromium`, done by .ci/run) and Node with npm. Without
//! Chromium the test says so loudly and passes, except in CI (`CI` or `TOLLGATE_REQUIRE_BROWSER`
//! set, as .ci/run does), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tollgate_tests::{Upstream, get};

use crate::support::{ControlPlane, Database, Node, apply};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The config the fleet serves: keys from the control plane, metering, an admin listener (the
/// portal reads usage through it) and a deprecated route for the catalogue.
pub const CONFIG: &str = r#"
[gateway]
plugin_dir = "{plugins}"
cache_dir = "{cache}"

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["UPSTREAM"]

[plugins.auth]
module = "auth"
[plugins.auth.config]
api_key = { header = "x-api-key", control = true }

[plugins.meter]
module = "meter"

[[routes]]
name = "legacy"
path_prefix = "/v1/"
upstream = "app"
chain = ["auth", "meter"]
deprecated = "2026-01-01T00:00:00Z"
sunset = "2027-06-30T00:00:00Z"

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
chain = ["auth", "meter"]
"#;

/// `npm ci` in tests/browser unless the pinned playwright-core is installed already.
fn npm_ci(dir: &Path) {
    let pinned: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("package.json")).unwrap()).unwrap();
    let want = pinned["dependencies"]["playwright-core"].as_str().unwrap();
    let installed = std::fs::read(dir.join("node_modules/playwright-core/package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    if installed.as_deref() == Some(want) {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("run npm (Node.js is needed for the browser tests)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

/// Usage reports of a route `spiky`: 40 requests a minute for the 12 minutes before this one,
/// then 2,000 in this one, which the spike detector alerts on (and the dashboard lists).
async fn report_a_spike(cp: &ControlPlane, node_token: &str) {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let minute = now - now.rem_euclid(60_000);
    let row = |minute_ms: i64, requests: i64| {
        serde_json::json!({"minute_ms": minute_ms, "route": "spiky", "consumer": "burst",
            "requests": requests, "errors": 0, "client_errors": 0, "latency": ""})
    };
    let mut rows: Vec<serde_json::Value> = (1..=12).map(|i| row(minute - i * 60_000, 40)).collect();
    rows.push(row(minute, 2000));
    let body = serde_json::json!({"node": "gw-spike", "rows": rows});
    let r = cp
        .api(http::Method::POST, "/v1/node/usage", node_token, Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// Whether the browser is here; outside CI a missing one skips the test with a loud message.
pub fn chromium_or_skip() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none() && std::env::var_os("TOLLGATE_REQUIRE_BROWSER").is_none(),
        "{CHROMIUM} is missing in CI: .ci/run installs it (apt-get install -y chromium)"
    );
    eprintln!(
        "\n!!!!!!!! SKIPPED: {CHROMIUM} is not installed, so the portal's browser test did not run.\n\
         !!!!!!!! Install it with `apt-get install -y chromium` and run the test again.\n"
    );
    false
}

/// Where screenshots go: target/screenshots in the repository.
pub fn screenshot_dir() -> PathBuf {
    tollgate_tests::repo_root().join("target/screenshots")
}

#[tokio::test(flavor = "multi_thread")]
async fn developer_operator_and_viewer_in_a_browser() {
    if !chromium_or_skip() {
        return;
    }
    let browser_dir = tollgate_tests::repo_root().join("tests/browser");
    npm_ci(&browser_dir);

    let upstream = Upstream::echo("app").await;
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    let operator = cp.token("ops", "operator").await;
    let viewer = cp.token("auditor", "viewer").await;
    let node_token = cp.token("fleet", "node").await;
    let dir = tempfile::tempdir().unwrap();
    let config = tollgate_tests::expand(CONFIG).replace("UPSTREAM", &upstream.target());
    apply(&cp, &operator, dir.path(), &config, "first revision");
    let node = Node::start(&cp, &node_token, "gw-browser");
    // The gateway has reported (the dashboard and the usage page read its report). It reports
    // after each change it sees, or after a quiet watch (20 s): a consumer change wakes it now.
    let warmup = serde_json::json!({"name": "warmup"});
    cp.api(http::Method::POST, "/v1/consumers", &operator, Some(warmup))
        .await;
    let started = std::time::Instant::now();
    while !String::from_utf8_lossy(
        &cp.api(http::Method::GET, "/v1/gateways", &operator, None)
            .await
            .body,
    )
    .contains("gw-browser")
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no report");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&node.url("/hello"), &[]).await.status, 401);
    report_a_spike(&cp, &node_token).await;

    let script = browser_dir.join("portal.mjs");
    let out = tokio::task::spawn_blocking({
        let (control, gateway) = (cp.url(), format!("http://{}", node.addr));
        let (operator, viewer) = (operator.clone(), viewer.clone());
        move || {
            Command::new("node")
                .arg(script)
                .env("CONTROL_URL", control)
                .env("GATEWAY_URL", gateway)
                .env("OPERATOR_TOKEN", operator)
                .env("VIEWER_TOKEN", viewer)
                .env("SCREENSHOT_DIR", screenshot_dir())
                .env("CHROMIUM", CHROMIUM)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{stderr}"
    );
    let result: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .expect("a RESULT line");
    assert!(result["key_accepted_ms"].as_i64().unwrap() <= 2000);
    assert!(result["key_refused_ms"].as_i64().unwrap() <= 2000);
    assert_eq!(result["viewer_forged_post"], 403);
    assert!(result["dashboard_api_requests"].as_i64().unwrap() >= 5);
    assert!(result["alert_rate"].as_i64().unwrap() >= 2000);
    let shots = ["portal.png", "dashboard.png", "dashboard-diff.png"];
    for shot in shots
        .iter()
        .chain(&["dashboard-usage.png", "dashboard-alerts.png"])
    {
        assert!(screenshot_dir().join(shot).exists(), "{shot} was saved");
    }
    // The rollback is a new revision restoring the first one's config.
    let current = cp
        .api(http::Method::GET, "/v1/revisions/current", &operator, None)
        .await
        .json();
    assert_eq!(current["rollback_of"], result["rolled_back_to"]);
    assert!(!current["config"].as_str().unwrap().contains("\"status\""));
}
