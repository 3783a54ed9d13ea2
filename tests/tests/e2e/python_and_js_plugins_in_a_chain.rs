//! An operator chains plugins written in Python (request signatures, componentize-py) and
//! JavaScript (sticky A/B router, componentize-js) next to a built-in Rust plugin, and swaps
//! the JavaScript plugin's split and its `.wasm` file while traffic flows.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::Method;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tollgate_tests::{Gateway, Reply, Upstream, admin_reload, client, example_dir, send};

const SECRET: &str = "0123456789abcdef-example-secret";

/// The chain: Python signature check -> JavaScript A/B router -> Rust `headers`. `ab_module` is
/// the A/B router's component file, `weights` its split.
fn config(upstream: &str, ab_module: &str, weights: (u32, u32)) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

# Python: CPython runs inside the component; it needs more memory and time than Rust.
[plugins.signature]
module = "{{examples}}/python_signature.wasm"
memory_limit_mb = 96
timeout_ms = 2000
[plugins.signature.config]
secret = "{SECRET}"
key_id = "partner-a"

[plugins.ab]
module = "{ab_module}"
memory_limit_mb = 64
timeout_ms = 2000
[plugins.ab.config]
experiment = "checkout"
sticky_header = "x-visitor-id"
variants = [{{ name = "a", weight = {a} }}, {{ name = "b", weight = {b} }}]

[plugins.tag]
module = "headers"
[plugins.tag.config]
request.set = {{ "x-gateway" = "tollgate" }}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "echo"
chain = ["signature", "ab", "tag"]
"#,
        a = weights.0,
        b = weights.1,
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature the Python plugin expects, computed independently.
fn sign(method: &str, path: &str, timestamp: &str, body: &[u8]) -> String {
    let text = format!(
        "{method}\n{path}\n{timestamp}\n{}",
        hex(&Sha256::digest(body))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// FNV-1a 32 of `experiment:id`, as the A/B router documents it.
fn variant_for(user: &str, weights: (u32, u32)) -> &'static str {
    let hash = format!("checkout:{user}")
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    if hash % (weights.0 + weights.1) < weights.0 {
        "a"
    } else {
        "b"
    }
}

async fn signed_post(
    c: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
    gateway: &Gateway,
    user: &str,
    body: &str,
) -> Reply {
    let ts = now_secs().to_string();
    let sig = sign("POST", "/api/orders", &ts, body.as_bytes());
    send(
        c,
        Method::POST,
        &gateway.url("/api/orders"),
        &[
            ("x-timestamp", &ts),
            ("x-signature", &sig),
            ("x-visitor-id", user),
        ],
        body.to_owned(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_js_plugins_decide_next_to_a_rust_plugin() {
    let upstream = Upstream::echo("echo").await;
    let examples = example_dir();
    let ab = examples.join("js_ab_router.wasm");
    let gateway = Gateway::start(&config(
        &upstream.target(),
        &ab.display().to_string(),
        (50, 50),
    ))
    .await;
    let c = client();

    // A signed request goes through all three plugins.
    let reply = signed_post(&c, &gateway, "user-7", r#"{"order":42}"#).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let seen = reply.json();
    let expected = variant_for("user-7", (50, 50));
    assert_eq!(seen["headers"]["x-ab-variant"][0], expected, "{seen}");
    assert_eq!(seen["headers"]["x-gateway"][0], "tollgate", "{seen}");
    assert_eq!(seen["body"], r#"{"order":42}"#);
    assert_eq!(reply.header("x-ab-variant"), Some(expected));

    // The Python plugin refuses, with 401 JSON, before the JS and Rust plugins and the upstream.
    let unsigned = send(&c, Method::POST, &gateway.url("/api/orders"), &[], "x").await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.json()["error"], "invalid_signature");
    assert_eq!(unsigned.json()["reason"], "missing");
    assert_eq!(unsigned.header("x-ab-variant"), None);

    let stale = (now_secs() - 3600).to_string();
    let sig = sign("POST", "/api/orders", &stale, b"x");
    let reply = send(
        &c,
        Method::POST,
        &gateway.url("/api/orders"),
        &[("x-timestamp", &stale), ("x-signature", &sig)],
        "x",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["reason"], "stale");

    // Signed for another body: the body hash does not match.
    let ts = now_secs().to_string();
    let sig = sign("POST", "/api/orders", &ts, b"original");
    let reply = send(
        &c,
        Method::POST,
        &gateway.url("/api/orders"),
        &[("x-timestamp", &ts), ("x-signature", &sig)],
        "tampered",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["reason"], "mismatch");

    // Sticky: the same user always lands in the same variant; many users split about evenly.
    let mut b_count = 0;
    for i in 0..60 {
        let user = format!("user-{i}");
        let first = signed_post(&c, &gateway, &user, "{}").await;
        let again = signed_post(&c, &gateway, &user, "{}").await;
        assert_eq!(first.status, 200);
        let v = first.header("x-ab-variant").unwrap().to_owned();
        assert_eq!(again.header("x-ab-variant"), Some(v.as_str()));
        assert_eq!(v, variant_for(&user, (50, 50)), "user {user}");
        b_count += usize::from(v == "b");
    }
    assert!((10..=50).contains(&b_count), "{b_count} of 60 users in b");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_split_and_wasm_file_swapped_under_traffic_fail_no_request() {
    let upstream = Upstream::echo("echo").await;
    let examples = example_dir();
    // The route's A/B router is a file of its own, so the test can replace it.
    let dir = tempfile::tempdir().unwrap();
    let ab = dir.path().join("ab.wasm");
    std::fs::copy(examples.join("js_ab_router.wasm"), &ab).unwrap();
    let ab_path = ab.display().to_string();
    let gateway = Gateway::start_in(dir, &config(&upstream.target(), &ab_path, (100, 0))).await;
    let check = signed_post(&client(), &gateway, "u", "{}").await;
    assert_eq!(
        check.status,
        200,
        "{}",
        String::from_utf8_lossy(&check.body)
    );
    assert_eq!(check.header("x-ab-variant"), Some("a"));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let variants = Arc::new(Mutex::new(Vec::<String>::new()));
    let gateway = Arc::new(gateway);
    let mut workers = Vec::new();
    for w in 0..4 {
        let (stop, ok, failures, variants, gateway) = (
            stop.clone(),
            ok.clone(),
            failures.clone(),
            variants.clone(),
            gateway.clone(),
        );
        workers.push(tokio::spawn(async move {
            let c = client();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let reply = signed_post(&c, &gateway, &format!("w{w}-{i}"), "{}").await;
                match reply.header("x-ab-variant") {
                    Some(v) if reply.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        variants.lock().await.push(v.to_owned());
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
    let wait_for = |n: usize| {
        let ok = ok.clone();
        async move {
            let started = Instant::now();
            let target = ok.load(Ordering::Relaxed) + n;
            while ok.load(Ordering::Relaxed) < target && started.elapsed() < Duration::from_secs(60)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let reload = |what: &'static str| {
        let gateway = gateway.clone();
        async move {
            let reply = admin_reload(&gateway).await;
            assert_eq!(
                reply.status,
                200,
                "reload ({what}): {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
    };

    // 1. Change the JavaScript plugin's split: everybody to b.
    wait_for(30).await;
    gateway.write_config(&config(&upstream.target(), &ab_path, (0, 100)));
    reload("split 0/100").await;
    wait_for(30).await;
    let after_split = variants.lock().await.len();

    // 2. Swap the .wasm file for the Rust equivalent (same config, same answers), then back.
    let tmp = ab.with_extension("tmp");
    std::fs::copy(
        examples.join("wasm32-wasip2/release/rust_ab_router.wasm"),
        &tmp,
    )
    .unwrap();
    std::fs::rename(&tmp, &ab).unwrap();
    reload("JS -> Rust file").await;
    wait_for(30).await;
    std::fs::copy(examples.join("js_ab_router.wasm"), &tmp).unwrap();
    std::fs::rename(&tmp, &ab).unwrap();
    reload("Rust -> JS file").await;
    wait_for(30).await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().await;
    let variants = variants.lock().await;
    println!(
        "swaps under traffic: {} requests, {} failed",
        ok.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed requests, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(
        variants[..5].iter().all(|v| v == "a"),
        "before the swap: {:?}",
        &variants[..5]
    );
    // Requests that started after the split's reload answered see only b (in-flight ones at
    // the swap may still say a; they were sent before).
    let tail = &variants[after_split..];
    assert!(
        !tail.is_empty() && tail.iter().all(|v| v == "b"),
        "after the swap: {tail:?}"
    );
    let last = signed_post(&client(), &gateway, "u", "{}").await;
    assert_eq!(last.header("x-ab-variant"), Some("b"));
}
