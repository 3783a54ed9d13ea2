//! Golden tests for invalid configs: `tollgate check -c tests/config/invalid/NAME.toml` must fail
//! and print exactly `NAME.err` (with the directory shown as `$DIR`).
//! Run with `UPDATE_GOLDEN=1` to rewrite the `.err` files after an intended change.

#![allow(clippy::unwrap_used)]

use crate::binary_support;

use std::path::Path;
use std::process::Command;

#[test]
fn invalid_configs_print_every_error_with_its_path() {
    // `plugin_config.toml` loads built-in plugins to show how their config errors read.
    binary_support::build_plugins();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/config/invalid")
        .canonicalize()
        .unwrap();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for toml in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        cases += 1;
        let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["check", "-c"])
            .arg(toml)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{} was accepted", toml.display());
        let stderr =
            String::from_utf8_lossy(&output.stderr).replace(&dir.display().to_string(), "$DIR");
        let golden = toml.with_extension("err");
        if update {
            std::fs::write(&golden, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {} (run with UPDATE_GOLDEN=1)", golden.display()));
        if expected != stderr {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- got\n{stderr}",
                toml.display()
            ));
        }
    }
    assert!(cases >= 8, "expected the golden cases in {}", dir.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_reference_config_is_valid() {
    // gateway.toml needs the built-in plugins; `check` compiles and initialises each of them.
    binary_support::build_plugins();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c"])
        .arg(root.join("gateway.toml"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "gateway.toml is invalid:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
