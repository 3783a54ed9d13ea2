//! The repository's `gateway.toml` requires signatures and trusts the build key: after
//! `scripts/build-plugins.sh` (which makes that key once and signs every built-in plugin with
//! openssl), `tollgate check` loads every built-in plugin.

use tollgate_tests::repo_root;

#[tokio::test]
async fn default_config_loads_with_every_builtin_signed() {
    let root = repo_root();
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/build-plugins.sh"))
        .current_dir(&root)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .unwrap();
    assert!(status.success(), "scripts/build-plugins.sh failed");
    let text = std::fs::read_to_string(root.join("gateway.toml")).unwrap();
    assert!(
        text.contains("\nrequire_signatures = true"),
        "gateway.toml requires signatures"
    );
    let summary = tollgate::gateway::check(&root.join("gateway.toml"))
        .await
        .unwrap_or_else(|e| panic!("gateway.toml refused: {e}"));
    println!("gateway.toml: {summary}");
}
