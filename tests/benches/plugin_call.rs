//! Micro-benchmark: the cost of one plugin call, in-process, without sockets.
//!
//! ```sh
//! cargo bench -p tollgate-tests --bench plugin_call            # PLUGIN_BENCH_N=100000 requests
//! ```
//!
//! `PLUGIN_BENCH_ONLY=headers` (or `policy`) runs only the cases whose name contains it, e.g. to
//! profile one of them with `perf record`.
//!
//! Runs the request and response phases of a route's chain on a prepared request, the way the
//! proxy does, with the Prometheus recorder installed as in the gateway. Cases: an empty chain, five
//! `headers` plugins (`request.set`, as in `scripts/bench.sh`), and the policy chain (auth API key,
//! rbac, ip-filter, rate-limit, quota, meter, headers) with memory state. Prints ns per request and
//! ns per plugin call (the difference to the empty chain divided by the calls made).

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode};
use tollgate::chain::{Chain, LogEntry, RequestState, ResponseState};
use tollgate::config::{OnError, PluginSpec};
use tollgate::runtime::{LoadedPlugin, MemoryState, Runtime, RuntimeOptions, WasmChain};
use tollgate_tests::plugin_dir;

const API_KEY: &str = "bench-key-0123456789abcdef0123456789";

fn spec(name: &str, module: &str, config_json: String) -> PluginSpec {
    PluginSpec {
        name: Arc::from(name),
        module: plugin_dir().join(format!("{}.wasm", module.replace('-', "_"))),
        config_json,
        on_error: OnError::FailClosed,
        on_state_error: OnError::FailOpen,
        timeout: Duration::from_millis(100),
        memory_limit: 16 << 20,
        pool_size: 2,
        max_instances: 64,
        fetch: Vec::new(),
        canary: None,
        version: Default::default(),
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn headers_spec(i: usize) -> PluginSpec {
    spec(
        &format!("h{i}"),
        "headers",
        format!(r#"{{"request":{{"set":{{"x-bench-{i}":"{i}"}}}}}}"#),
    )
}

fn policy_specs() -> Vec<PluginSpec> {
    let key = sha256_hex(API_KEY);
    vec![
        spec(
            "auth",
            "auth",
            format!(
                r#"{{"methods":["api_key"],"api_key":{{"keys":[{{"hash":"{key}","consumer":"bench","roles":["user"],"plan":"pro"}}]}}}}"#
            ),
        ),
        spec(
            "rbac",
            "rbac",
            r#"{"rules":[{"roles":["user"],"methods":["*"],"paths":["/**"],"effect":"allow"}]}"#
                .into(),
        ),
        spec(
            "ip-filter",
            "ip-filter",
            r#"{"allow":["127.0.0.0/8"]}"#.into(),
        ),
        spec(
            "rate-limit",
            "rate-limit",
            r#"{"limit":100000000,"period":"1s","key":["consumer"]}"#.into(),
        ),
        spec(
            "quota",
            "quota",
            r#"{"plans":{"pro":{"requests":1000000000,"period":"month"}},"default_plan":"pro"}"#
                .into(),
        ),
        spec("meter", "meter", r#"{"retention_days":1}"#.into()),
        headers_spec(1),
    ]
}

fn request() -> RequestState {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "127.0.0.1:8080"),
        ("user-agent", "bench/1.0"),
        ("accept", "*/*"),
        ("x-api-key", API_KEY),
        ("x-request-id", "0af7651916cd43dd8448eb211c80319c"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    RequestState {
        path: "/api/items".into(),
        headers,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: Arc::from("bench"),
        request_id: Arc::from("0af7651916cd43dd8448eb211c80319c"),
        ..RequestState::default()
    }
}

/// Nanoseconds per request through `chain` (request, response and log phases), over `n` requests.
async fn run(chain: &WasmChain, n: usize) -> f64 {
    let template = request();
    let one = async || {
        let mut req = template.clone();
        let outcome = chain.on_request(&mut req).await.unwrap();
        let mut resp = ResponseState {
            status: StatusCode::OK,
            ..ResponseState::default()
        };
        chain
            .on_response(&mut req, &mut resp, outcome.ran)
            .await
            .unwrap();
        if chain.wants_log() {
            chain
                .on_log(
                    req,
                    LogEntry {
                        status: 200,
                        ..LogEntry::default()
                    },
                )
                .await;
        }
    };
    for _ in 0..n / 10 {
        one().await;
    }
    let started = Instant::now();
    for _ in 0..n {
        one().await;
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

/// Request + response + log calls one request makes through these plugins.
fn calls(plugins: &[Arc<LoadedPlugin>]) -> usize {
    plugins
        .iter()
        .map(|p| {
            let c = p.capabilities();
            usize::from(c.request) + usize::from(c.response) + usize::from(c.log)
        })
        .sum()
}

async fn load(rt: &Runtime, specs: Vec<PluginSpec>) -> Vec<Arc<LoadedPlugin>> {
    let mut out = Vec::new();
    for s in &specs {
        out.push(rt.load_plugin(s).await.unwrap());
    }
    out
}

fn main() {
    let n: usize = std::env::var("PLUGIN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    tollgate::admin::install_metrics_recorder();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let opts = RuntimeOptions {
            max_instances: 64,
            ..RuntimeOptions::default()
        };
        let rt = Runtime::new(opts, Arc::new(MemoryState::new())).unwrap();
        let empty = WasmChain::new(Vec::new());
        let five = load(&rt, (1..=5).map(headers_spec).collect()).await;
        let policy = load(&rt, policy_specs()).await;
        let cases = [
            ("5 headers", WasmChain::new(five.clone()), calls(&five)),
            (
                "policy chain (7)",
                WasmChain::new(policy.clone()),
                calls(&policy),
            ),
        ];
        let only = std::env::var("PLUGIN_BENCH_ONLY").unwrap_or_default();
        let base = run(&empty, n).await;
        println!("{n} requests per case, current-thread tokio runtime");
        println!("{:<18} {:>10.0} ns/request", "empty chain", base);
        for (name, chain, calls) in cases.iter().filter(|(name, ..)| name.contains(&*only)) {
            let t = run(chain, n).await;
            println!(
                "{name:<18} {t:>10.0} ns/request   {calls} calls   {:>6.0} ns per call",
                (t - base) / *calls as f64
            );
        }
    });
}
