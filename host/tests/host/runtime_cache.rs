//! The compile cache: a second runtime with the same cache directory loads `.cwasm` files
//! instead of compiling.

use crate::runtime_support;

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tollgate::runtime::{CompileSource, MemoryState, Runtime, RuntimeOptions};

use runtime_support::spec;

#[tokio::test]
async fn second_runtime_loads_from_the_disk_cache() {
    let dir = std::env::temp_dir().join(format!("tollgate-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = RuntimeOptions {
        cache_dir: Some(dir.clone()),
        ..RuntimeOptions::default()
    };
    let spec = spec("rec", "recorder", json!({ "name": "r" }));

    let first = Runtime::new(opts.clone(), Arc::new(MemoryState::new())).expect("runtime");
    let started = Instant::now();
    let plugin = first.load_plugin(&spec).await.expect("load");
    let compiled = started.elapsed();
    assert_eq!(plugin.compile_source(), CompileSource::Compiled);

    let again = first.load_plugin(&spec).await.expect("reload");
    assert_eq!(again.compile_source(), CompileSource::Memory);
    assert_eq!(again.fingerprint(), plugin.fingerprint());
    assert_eq!(
        first.fingerprint(&spec).await.expect("fingerprint"),
        plugin.fingerprint()
    );

    let second = Runtime::new(opts, Arc::new(MemoryState::new())).expect("runtime");
    let started = Instant::now();
    let cached = second.load_plugin(&spec).await.expect("load from cache");
    let loaded = started.elapsed();
    assert_eq!(cached.compile_source(), CompileSource::Disk);
    println!(
        "load_plugin (incl. instantiate + init, {} build): compiled {compiled:?}, from .cwasm {loaded:?}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    // A corrupt cache file is recompiled and overwritten. (Replaced through a rename, as the
    // cache itself does: truncating a file in place while it is mapped would SIGBUS.)
    for entry in std::fs::read_dir(&dir).expect("cache dir").flatten() {
        let tmp = dir.join("garbage.tmp");
        std::fs::write(&tmp, b"garbage").expect("write");
        std::fs::rename(&tmp, entry.path()).expect("corrupt");
    }
    let third = Runtime::new(second.options().clone(), Arc::new(MemoryState::new())).expect("rt");
    let recompiled = third.load_plugin(&spec).await.expect("recompile");
    assert_eq!(recompiled.compile_source(), CompileSource::Compiled);
    let _ = std::fs::remove_dir_all(&dir);
}
