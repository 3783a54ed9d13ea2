//! `tollgate plugin test MODULE --scenario FILE`: a stateful plugin (the built-in `quota`) tested
//! over several requests against one instance, with seeded state and a fixed clock that steps
//! move, each step checked against what the author expects; a step that does not hold fails the
//! run (exit 1) and says why, a bad scenario file is bad input (exit 2).

use std::path::Path;
use std::process::{Command, Output};

use crate::binary_support::build_plugins;

/// 2026-11-26T13:45:00Z.
const NOV_26_13_45: u64 = 1_795_700_700_000;

fn scenario(expect_last_status: u16) -> String {
    format!(
        r#"name = "quota"
now_ms = {NOV_26_13_45}
config = {{ plans = {{ free = {{ requests = 3, period = "day" }} }} }}

[state]
# Two of today's three requests are already used.
counters = {{ "alice:day:20261126" = 2 }}

[[steps]]
name = "the last request of the day"
request = {{ path = "/api/orders", context = {{ consumer = "alice", plan = "free" }} }}
expect = {{ action = "continue", status = 200, headers = {{ "x-quota-remaining" = "0" }} }}

[[steps]]
name = "over quota"
request = {{ path = "/api/orders", context = {{ consumer = "alice", plan = "free" }} }}
expect = {{ action = "respond", status = 429, headers = {{ "retry-after" = "36900" }}, body_contains = "quota_exceeded" }}

[[steps]]
name = "the next day"
advance_ms = 39600000
request = {{ path = "/api/orders", context = {{ consumer = "alice", plan = "free" }} }}
expect = {{ status = {expect_last_status}, headers = {{ "x-quota-reset" = "2026-11-28T00:00:00Z" }} }}
"#
    )
}

fn run(dir: &Path, file: &str, text: &str) -> (Output, serde_json::Value) {
    std::fs::write(dir.join(file), text).unwrap();
    let module = build_plugins().join("quota.wasm");
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["plugin", "test"])
        .arg(module)
        .args(["--scenario", file])
        .current_dir(dir)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output, json)
}

#[test]
fn a_scenario_runs_steps_against_one_instance_with_seeded_state_and_a_fixed_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = run(dir.path(), "quota.toml", &scenario(200));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{report}");
    assert_eq!(report["passed"], 3, "{report}");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["steps"][1]["outcome"]["response"]["status"], 429);

    // An expectation that does not hold: exit 1, the step and the difference named.
    let (out, report) = run(dir.path(), "wrong.toml", &scenario(503));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["steps"][2]["passed"], false);
    assert!(
        stderr.contains("step `the next day` failed")
            && stderr.contains("status: expected 503, got 200"),
        "{stderr}"
    );

    // A scenario with a typo is bad input.
    let (out, _) = run(dir.path(), "typo.toml", "[[steps]]\nexpects = {}\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown field `expects`"), "{stderr}");
}
