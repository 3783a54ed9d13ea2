//! A plugin author tests a built component in-process with `tollgate::plugin_test`, the kit
//! `tollgate plugin test` is built on: load it with a config, feed requests with context values,
//! assert what it decided, move a fixed clock, seed and read its state, read its log lines.
//!
//! The component is the built-in `quota` plugin (clock, counters, context, both phases), built
//! from `plugins/` once per test process. docs/plugin-guide.md ("Testing in Rust: the test kit")
//! shows this file's test as the usage to copy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tollgate::plugin_test::{FixedClock, LoadOptions, LogCapture, PluginUnderTest, TestRequest};
use tollgate::runtime::{MemoryState, StateBackend as _};
use tracing_subscriber::layer::SubscriberExt as _;

/// `plugins/target/wasm32-wasip2/release/quota.wasm`, built once per test process, unless
/// `scripts/test.sh` built every plugin just before (`TOLLGATE_WASM_PREBUILT=1`): building the
/// one package alone unifies other features, so it would replace the signed module with other
/// bytes under the tests that run beside this one.
fn quota_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let plugins = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins");
            let module = plugins.join("target/wasm32-wasip2/release/quota.wasm");
            if std::env::var_os("TOLLGATE_WASM_PREBUILT").is_some_and(|v| v == "1")
                && module.exists()
            {
                return module;
            }
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "-p",
                    "quota",
                ])
                .current_dir(&plugins)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "building plugins/quota failed: {status:?}"
            );
            plugins.join("target/wasm32-wasip2/release/quota.wasm")
        })
        .clone()
}

/// 2026-11-26T13:45:00Z in milliseconds.
const NOV_26_13_45: u64 = 1_795_700_700_000;

/// A request from `alice` on the `free` plan, as the auth plugin before quota would leave it.
fn from_alice() -> TestRequest {
    serde_json::from_value(serde_json::json!({
        "method": "GET",
        "path": "/api/orders",
        "context": { "consumer": "alice", "plan": "free" },
    }))
    .unwrap()
}

#[tokio::test]
async fn quota_plugin_counts_refuses_and_resets_under_a_fixed_clock() {
    // What the plugin's `log` import writes, captured for this test's thread.
    let logs = LogCapture::new();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()));

    let clock = FixedClock::new(NOV_26_13_45);
    let state = Arc::new(MemoryState::new());
    let config = r#"{"plans": {"free": {"requests": 3, "period": "day"}}}"#;
    let quota = PluginUnderTest::load(
        &quota_wasm(),
        config,
        LoadOptions {
            clock: Arc::new(clock.clone()),
            state: state.clone(),
            name: "quota".to_owned(),        // state keys are `quota:<key>`
            timeout: Duration::from_secs(1), // generous: debug build, loaded machine
            ..LoadOptions::default()
        },
    )
    .await
    .expect("quota loads with this config");
    let caps = quota.capabilities();
    assert!(caps.request && !caps.response && !caps.log);

    // First request of the day: admitted; the request phase asks for the quota headers through
    // the context (`response.header.*`) and the chain puts them on the response.
    let out = quota.run(&from_alice()).await.unwrap();
    assert_eq!(out.action, "continue", "{out:?}");
    assert_eq!(out.phases, ["request"]);
    let resp = out.response.as_ref().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-quota-limit"), Some("3"));
    assert_eq!(resp.header("x-quota-remaining"), Some("2"));
    assert_eq!(resp.header("x-quota-reset"), Some("2026-11-27T00:00:00Z"));
    assert_eq!(out.context.set["response.header.x-quota-remaining"], "2");

    // The counter the plugin keeps, read and seeded through the state it was given.
    let key = "quota:alice:day:20261126";
    assert_eq!(state.get_counter(key).await.unwrap(), 1);
    quota.state().incr(key, 2, None).await.unwrap(); // two more requests used today

    // Over quota: 429 with the plugin's JSON body; the refused request is not counted.
    let out = quota.run(&from_alice()).await.unwrap();
    assert_eq!(out.action, "respond", "{out:?}");
    assert_eq!(out.phases, ["request"]);
    let resp = out.response.as_ref().unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("x-quota-remaining"), Some("0"));
    assert_eq!(resp.header("retry-after"), Some("36900")); // 10 h 15 min to midnight UTC
    let body: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(body["limit"], 3);
    assert_eq!(state.get_counter(key).await.unwrap(), 3);

    // The next day starts a new count.
    clock.advance(Duration::from_secs(11 * 3600));
    let out = quota.run(&from_alice()).await.unwrap();
    assert_eq!(out.action, "continue", "{out:?}");
    let resp = out.response.as_ref().unwrap();
    assert_eq!(resp.header("x-quota-remaining"), Some("2"));
    assert_eq!(resp.header("x-quota-reset"), Some("2026-11-28T00:00:00Z"));

    // No consumer in the context: refused without touching state.
    let anonymous = TestRequest {
        path: Some("/api/orders".to_owned()),
        ..TestRequest::default()
    };
    let out = quota.run(&anonymous).await.unwrap();
    assert_eq!(out.response.as_ref().unwrap().status, 403);

    // A state error (the key holds a string, not a counter) is logged and the request admitted.
    let bob_key = "quota:bob:day:20261127";
    state.set(bob_key, "not a counter", None).await.unwrap();
    let mut from_bob = from_alice();
    from_bob
        .context
        .insert("consumer".to_owned(), "bob".to_owned());
    let out = quota.run(&from_bob).await.unwrap();
    assert_eq!(out.action, "continue", "{out:?}");
    let lines = logs.take();
    assert!(
        lines
            .iter()
            .any(|l| l.level == "warn" && l.message.contains("request not counted")),
        "{lines:?}"
    );
}
