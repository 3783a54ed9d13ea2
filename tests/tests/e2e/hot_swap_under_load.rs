//! Operators swap plugins and their config while traffic flows: no request fails, in-flight
//! requests finish on the old chain, the new behaviour is visible afterwards, and a bad reload
//! changes nothing.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use tokio::sync::Mutex;
use tollgate_tests::{Gateway, Upstream, admin_reload, client, get, send};

/// A config whose chain tags responses with `version`. Odd versions add a second plugin, so the
/// swap changes the chain's shape as well as a plugin's config.
fn config(upstream: &str, version: usize, watch: bool) -> String {
    let (extra_plugin, chain) = if version % 2 == 1 {
        (
            format!(
                "[plugins.recorder]\nmodule = \"{{fixtures}}/recorder.wasm\"\nconfig = {{ name = \"r{version}\" }}\n"
            ),
            r#"["recorder", "version"]"#,
        )
    } else {
        (String::new(), r#"["version"]"#)
    };
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = {watch}

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.version]
module = "headers"
[plugins.version.config]
response.set = {{ "x-version" = "v{version}" }}

{extra_plugin}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = {chain}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_swaps_under_steady_traffic_fail_no_request() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 0, false)).await;
    assert_eq!(
        get(&gateway.url("/api/x"), &[]).await.header("x-version"),
        Some("v0")
    );

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failures, seen) = (stop.clone(), ok.clone(), failures.clone(), seen.clone());
        let url = gateway.url("/api/orders");
        workers.push(tokio::spawn(async move {
            let client = client();
            while !stop.load(Ordering::Relaxed) {
                let reply = send(&client, Method::GET, &url, &[], bytes::Bytes::new()).await;
                match reply.header("x-version") {
                    Some(v) if reply.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        seen.lock().await.insert(v.to_owned());
                    }
                    _ => failures.lock().await.push(format!(
                        "{} {}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    )),
                }
            }
        }));
    }

    let started = Instant::now();
    let mut swap_times = Vec::new();
    for version in 1..=20 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        gateway.write_config(&config(&upstream.target(), version, false));
        let reply = admin_reload(&gateway).await;
        assert_eq!(
            reply.status,
            200,
            "reload {version}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        swap_times.push(reply.json()["report"]["millis"].as_f64().unwrap());
    }
    // Keep the traffic going until at least 2,000 requests went through.
    while ok.load(Ordering::Relaxed) < 2_000 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let failures = failures.lock().await;
    let total = ok.load(Ordering::Relaxed);
    let seen = seen.lock().await;
    swap_times.sort_by(f64::total_cmp);
    println!(
        "hot swap: {total} requests, {} failed, 20 swaps, versions seen {}, reload ms p50 {:.2} max {:.2}",
        failures.len(),
        seen.len(),
        swap_times[swap_times.len() / 2],
        swap_times[swap_times.len() - 1]
    );
    assert!(
        failures.is_empty(),
        "{} failed requests, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(total >= 2_000, "only {total} requests");
    assert!(seen.len() >= 10, "traffic saw too few versions: {seen:?}");

    let last = get(&gateway.url("/api/orders"), &[]).await;
    assert_eq!(last.header("x-version"), Some("v20"));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_reload_changes_nothing_and_says_why() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 0, false)).await;

    // The headers plugin refuses an invalid header name in its own config.
    let bad = config(&upstream.target(), 1, false).replace("x-version", "bad header");
    gateway.write_config(&bad);
    let reply = admin_reload(&gateway).await;
    assert_eq!(reply.status, 422);
    let body = reply.json();
    assert_eq!(body["error"], "reload_failed");
    assert_eq!(
        body["issues"][0]["path"], "plugins.version.config.response.set",
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("bad header"),
        "{body}"
    );

    // A config error is reported with its TOML path, too.
    gateway.write_config(
        &config(&upstream.target(), 2, false).replace("upstream = \"echo\"", "upstream = \"nope\""),
    );
    let reply = admin_reload(&gateway).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["issues"][0]["path"], "routes[0].upstream");

    let still = get(&gateway.url("/api/x"), &[]).await;
    assert_eq!(still.status, 200);
    assert_eq!(
        still.header("x-version"),
        Some("v0"),
        "the old chain keeps serving"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn editing_the_config_file_reloads_it() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), 0, true)).await;
    assert_eq!(
        get(&gateway.url("/api/x"), &[]).await.header("x-version"),
        Some("v0")
    );

    gateway.write_config(&config(&upstream.target(), 2, true));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(&gateway.url("/api/x"), &[]).await;
        assert_eq!(reply.status, 200);
        if reply.header("x-version") == Some("v2") {
            break;
        }
        assert!(Instant::now() < deadline, "file change was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_a_plugin_module_file_swaps_the_plugin() {
    let upstream = Upstream::echo("echo").await;
    let module_config = |upstream: &str| {
        format!(
            r#"
[gateway]
cache_dir = "{{cache}}"
watch = true

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.policy]
module = "policy.wasm"
timeout_ms = 50
config = {{ trigger_header = "x-hostile" }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["policy"]
"#
        )
    };
    // The config names `policy.wasm` beside it: first a copy of the trapping fixture.
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("policy.wasm");
    std::fs::copy(tollgate_tests::fixture_dir().join("trapper.wasm"), &module).unwrap();
    let gateway = Gateway::start_in(dir, &module_config(&upstream.target())).await;
    let before = get(&gateway.url("/x"), &[("x-hostile", "1")]).await;
    assert_eq!(before.json()["kind"], "trap");

    // A deploy replaces the file (write beside it, then rename over it).
    let tmp = module.with_extension("tmp");
    std::fs::copy(tollgate_tests::fixture_dir().join("looper.wasm"), &tmp).unwrap();
    std::fs::rename(&tmp, &module).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(&gateway.url("/x"), &[("x-hostile", "1")]).await;
        if reply.json()["kind"] == "timeout" {
            break;
        }
        assert_eq!(reply.json()["kind"], "trap");
        assert!(Instant::now() < deadline, "module change was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&gateway.url("/x"), &[]).await.status, 200);
    gateway.shutdown().await;
}
