//! Shared helpers for the runtime tests: build the fixture plugins once per test process and
//! make plugin specs for them.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tollgate::chain::RequestState;
use tollgate::config::{OnError, PluginSpec};
use tollgate::runtime::{MemoryState, Runtime, RuntimeOptions};

/// The fixtures workspace: `tests/fixtures` of this repository, or `TOLLGATE_FIXTURES_DIR`.
fn fixtures_dir() -> PathBuf {
    match std::env::var_os("TOLLGATE_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"),
    }
}

/// Build the fixtures once per test process and return their output directory.
pub fn fixtures() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = fixtures_dir();
        // `scripts/test.sh` built them just before (see `tollgate_tests::prebuilt`).
        if std::env::var_os("TOLLGATE_WASM_PREBUILT").is_some_and(|v| v == "1") {
            return dir.join("target/wasm32-wasip2/release");
        }
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => panic!(
                "building the fixtures in {} failed: {other:?}",
                dir.display()
            ),
        }
        dir.join("target/wasm32-wasip2/release")
    })
}

/// A spec for fixture `file` (e.g. `"looper"`) named `name` with this JSON config.
pub fn spec(name: &str, file: &str, config: serde_json::Value) -> PluginSpec {
    PluginSpec {
        name: Arc::from(name),
        module: fixtures().join(format!("{file}.wasm")),
        config_json: config.to_string(),
        on_error: OnError::FailClosed,
        on_state_error: OnError::FailClosed,
        // Generous: debug builds on a loaded 2-core machine; the deadline test sets its own.
        timeout: Duration::from_secs(1),
        memory_limit: 16 << 20,
        pool_size: 1,
        max_instances: 64,
        fetch: Vec::new(),
        canary: None,
        version: Default::default(),
    }
}

/// A runtime with in-memory state and no disk cache.
pub fn runtime() -> (Runtime, Arc<MemoryState>) {
    let state = Arc::new(MemoryState::new());
    let rt = Runtime::new(RuntimeOptions::default(), state.clone());
    match rt {
        Ok(rt) => (rt, state),
        Err(e) => panic!("runtime: {e}"),
    }
}

/// A plain GET request with these headers.
pub fn request(headers: &[(&'static str, &'static str)]) -> RequestState {
    let mut req = RequestState {
        path: "/test".into(),
        route: Arc::from("r"),
        request_id: Arc::from("req-1"),
        ..RequestState::default()
    };
    for (name, value) in headers {
        req.headers
            .insert(*name, http::HeaderValue::from_static(value));
    }
    req
}
