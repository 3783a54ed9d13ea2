//! The sandbox limits, with hostile fixture plugins: deadline, memory cap, traps, failure policy.

use crate::runtime_support;

use std::time::{Duration, Instant};

use serde_json::json;
use tollgate::chain::{Chain, FailureKind, Flow};
use tollgate::config::OnError;
use tollgate::runtime::{RuntimeError, WasmChain};

use runtime_support::{request, runtime, spec};

#[tokio::test]
async fn looper_times_out_and_the_plugin_keeps_serving() {
    let (rt, _) = runtime();
    let mut looper = spec("loop", "looper", json!({ "trigger_header": "x-loop" }));
    looper.timeout = Duration::from_millis(50);
    let looper = rt.load_plugin(&looper).await.expect("load looper");
    let chain = WasmChain::new(vec![looper.clone()]);
    // Idle long enough for the epoch ticker to park: the call must wake it and still time out.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let err = chain
        .on_request(&mut request(&[("x-loop", "1")]))
        .await
        .expect_err("the looper must time out");
    let took = started.elapsed();
    println!("looper with a 50 ms deadline stopped after {took:?}");
    assert_eq!(err.kind, FailureKind::Timeout, "{err}");
    assert_eq!(&*err.plugin, "loop");
    assert!(took < Duration::from_secs(1), "took {took:?}");

    let mut req = request(&[("x-other", "1")]);
    let out = chain.on_request(&mut req).await.expect("next call works");
    assert!(matches!(out.flow, Flow::Continue));
    // The request state came back intact after the timed-out call too.
    assert_eq!(req.path, "/test");
    let stats = looper.stats();
    assert_eq!((stats.calls, stats.timeouts), (2, 1));
    // Replaced, not reused: at least one more instance was made (a loaded machine may make a
    // second one while the first replacement's `init` is still running).
    assert!(
        stats.instances_created >= 2,
        "the timed-out instance was replaced: {} created",
        stats.instances_created
    );
}

#[tokio::test]
async fn memory_hog_hits_the_memory_limit() {
    let (rt, _) = runtime();
    let hog = rt
        .load_plugin(&spec("hog", "memory_hog", json!({})))
        .await
        .expect("load hog");
    let chain = WasmChain::new(vec![hog]);
    let err = chain
        .on_request(&mut request(&[]))
        .await
        .expect_err("must fail");
    assert_eq!(err.kind, FailureKind::MemoryLimit, "{err}");
}

#[tokio::test]
async fn trapper_traps_and_fail_open_skips_it() {
    let (rt, _) = runtime();
    let trapper = rt
        .load_plugin(&spec("trap", "trapper", json!({})))
        .await
        .expect("load");
    let err = WasmChain::new(vec![trapper])
        .on_request(&mut request(&[]))
        .await
        .expect_err("must trap");
    assert_eq!(err.kind, FailureKind::Trap, "{err}");
    println!("trap message: {err}");

    let mut open = spec("trap-open", "trapper", json!({}));
    open.on_error = OnError::FailOpen;
    let trapper = rt.load_plugin(&open).await.expect("load");
    let recorder = rt
        .load_plugin(&spec("rec", "recorder", json!({ "name": "b" })))
        .await
        .expect("load");
    let chain = WasmChain::new(vec![trapper.clone(), recorder]);
    let mut req = request(&[("x-keep", "yes")]);
    let out = chain
        .on_request(&mut req)
        .await
        .expect("fail-open continues");
    assert!(matches!(out.flow, Flow::Continue));
    assert_eq!(
        req.headers.get("x-order").map(|v| v.as_bytes()),
        Some(&b"b"[..])
    );
    assert_eq!(
        req.headers.get("x-keep").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    assert_eq!(trapper.stats().traps, 1);
}

#[tokio::test]
async fn init_error_carries_the_plugins_message() {
    let (rt, _) = runtime();
    let err = rt
        .load_plugin(&spec("rec", "recorder", json!({ "name": "" })))
        .await
        .expect_err("empty name is refused");
    assert!(matches!(err, RuntimeError::Init { .. }), "{err:?}");
    assert_eq!(err.to_string(), "plugin `rec`: `name` must not be empty");
}

#[tokio::test]
async fn recorder_changes_context_and_log_state_are_visible() {
    let (rt, state) = runtime();
    let mut plugins = Vec::new();
    for name in ["a", "b"] {
        let config = json!({ "name": name, "log_counter": "hits" });
        plugins.push(
            rt.load_plugin(&spec(name, "recorder", config))
                .await
                .expect("load"),
        );
    }
    let chain = WasmChain::new(plugins);
    assert!(chain.wants_log());
    let mut req = request(&[]);
    let out = chain.on_request(&mut req).await.expect("request phase");
    assert_eq!(out.ran, 2);
    assert_eq!(
        req.headers.get("x-order").map(|v| v.as_bytes()),
        Some(&b"a,b"[..])
    );
    assert_eq!(req.context.get("order").map(String::as_str), Some("a,b"));

    let mut resp = tollgate::chain::ResponseState::default();
    let flow = chain
        .on_response(&mut req, &mut resp, out.ran)
        .await
        .expect("response phase");
    assert!(matches!(flow, Flow::Continue));
    let seen: Vec<_> = resp.headers.get_all("x-order-response").iter().collect();
    println!("response-phase headers: {seen:?}");

    chain
        .on_log(req, tollgate::chain::LogEntry::default())
        .await;
    use tollgate::runtime::StateBackend;
    assert_eq!(state.get_counter("a:hits").await.ok(), Some(1));
    assert_eq!(state.get_counter("b:hits").await.ok(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_call_cost_of_the_recorder() {
    let (rt, _) = runtime();
    let rec = rt
        .load_plugin(&spec("rec", "recorder", json!({ "name": "r" })))
        .await
        .expect("load");
    let chain = WasmChain::new(vec![rec.clone()]);
    const N: u32 = 10_000;
    for _ in 0..100 {
        let _ = chain.on_request(&mut request(&[])).await;
    }
    let mut reqs: Vec<_> = (0..N).map(|_| request(&[])).collect();
    let started = Instant::now();
    for req in &mut reqs {
        chain.on_request(req).await.expect("call");
    }
    let took = started.elapsed();
    println!(
        "recorder warm call ({} build): {:.2} µs per on-request over {N} calls (reads and sets one header, context get+set)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        took.as_secs_f64() * 1e6 / f64::from(N)
    );
    assert_eq!(
        rec.stats().instances_created,
        1,
        "one warm instance served every call"
    );
}
