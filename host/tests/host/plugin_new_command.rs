//! A plugin author starts with `tollgate plugin new NAME`: the crate builds for wasm32-wasip2,
//! passes its own tests, and `tollgate plugin test` runs the built component.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn a_new_plugin_builds_passes_its_tests_and_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("my-plugin");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["plugin", "new", "my-plugin", "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second `new` into the same place refuses to overwrite.
    let again = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["plugin", "new", "my-plugin", "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // One target dir for every run of this test, so dependencies build once per machine.
    let target = root.join("target/plugin-new-test");
    let cargo = |args: &[&str]| {
        let status = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .unwrap();
        assert!(status.success(), "cargo {args:?} failed in the new crate");
    };
    cargo(&["build", "--release", "--target", "wasm32-wasip2"]);
    cargo(&["test"]);

    let wasm = target.join("wasm32-wasip2/release/my_plugin.wasm");
    let run = |request: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["plugin", "test"])
            .arg(&wasm)
            .args(["--request", request, "--config", "config.toml"])
            .current_dir(&crate_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let json = run("request.json");
    assert_eq!(json["action"], "continue", "{json}");
    assert_eq!(json["context"]["set"]["caller"], "alice");

    std::fs::write(
        crate_dir.join("anonymous.json"),
        r#"{"path": "/api/orders"}"#,
    )
    .unwrap();
    let json = run("anonymous.json");
    assert_eq!(json["action"], "respond", "{json}");
    assert_eq!(json["response"]["status"], 401);
    assert_eq!(json["logs"][0]["message"], "refused: header missing");
}
