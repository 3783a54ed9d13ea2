//! The light test kit (`tollgate-testkit`): a plugin author's Rust test builds a scenario, the
//! `tollgate` binary runs it against the built component, and the test asserts the report. The
//! kit refuses a component older than its crate's sources.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tollgate_testkit::{Component, Error, Scenario, Step};

use crate::binary_support::build_plugins;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// A crate directory as an author has it: sources, and the component built after them.
fn author_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"quota\"\n").unwrap();
    std::fs::write(dir.join("src/lib.rs"), "// the plugin\n").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let release = dir.join("target/wasm32-wasip2/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(
        build_plugins().join("quota.wasm"),
        release.join("quota.wasm"),
    )
    .unwrap();
}

#[test]
fn the_kit_runs_a_scenario_and_refuses_a_stale_component() {
    let dir = tempfile::tempdir().unwrap();
    author_crate(dir.path());
    let quota = Component::in_crate(dir.path(), "quota").unwrap();
    let alice =
        json!({ "path": "/api/orders", "context": { "consumer": "alice", "plan": "free" } });
    let scenario = Scenario::new()
        .name("quota")
        .now_ms(1_795_700_700_000) // 2026-11-26T13:45:00Z
        .config(json!({ "plans": { "free": { "requests": 3, "period": "day" } } }))
        .counter("alice:day:20261126", 2)
        .step(
            Step::new("last of the day")
                .request(alice.clone())
                .expect(json!({ "status": 200, "headers": { "x-quota-remaining": "0" } })),
        )
        .step(
            Step::new("over quota")
                .request(alice.clone())
                .expect(json!({ "action": "respond", "status": 429 })),
        );
    let report = scenario.run_with(binary(), &quota).unwrap();
    report.assert_passed();
    let body = report.outcome(1)["response"]["body"].as_str().unwrap();
    assert!(body.contains("quota_exceeded"), "{body}");

    // A failed expectation is reported, not hidden.
    let wrong = scenario.clone().step(
        Step::new("wrong")
            .request(alice)
            .expect(json!({ "status": 200 })),
    );
    let report = wrong.run_with(binary(), &quota).unwrap();
    assert_eq!(report.failed(), 1);
    let panic = std::panic::catch_unwind(|| report.assert_passed()).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("step `wrong`") && message.contains("status: expected 200, got 429"),
        "{message}"
    );

    // The source changed after the build: the kit refuses to test the old component.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.path().join("src/lib.rs"), "// edited\n").unwrap();
    match scenario.run_with(binary(), &quota) {
        Err(Error::Stale { source, .. }) => assert!(source.ends_with("src/lib.rs")),
        other => panic!("a stale component was tested: {other:?}"),
    }
}
