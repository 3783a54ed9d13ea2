//! Micro-benchmark: the cost of one plugin call, in-process, without sockets.
//!
//! ```sh
//! cargo bench -p tollgate-tests --bench plugin_call            # PLUGIN_BENCH_N=100000 requests
//! ```
//!
//! `PLUGIN_BENCH_ONLY=headers` (or `policy`) runs only the cases whose name contains it, e.g. to
//! profile one of them with `perf record`. The `policy: NAME` cases run each plugin of the policy
//! chain alone (without `auth` before it, `rbac` refuses and the others count `anonymous`).
//!
//! Runs the request and response phases of a route's chain on a prepared request, the way the
//! proxy does, with the Prometheus recorder installed as in the gateway. Cases: an empty chain, five
//! `headers` plugins (`request.set`, as in `scripts/bench.sh`), and the policy chain (auth API key,
//! rbac, ip-filter, rate-limit, quota, meter, headers) with memory state, and `redact` on the 3 KB
//! JSON of `scripts/bench-vs-nginx.sh`'s `json-redact` case. Prints ns per request and ns per
//! plugin call (the difference to the empty chain, with the same response, divided by the calls
//! made).

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
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

/// The `json-redact` case's response body of `scripts/bench-vs-nginx.sh`: 20 customers with
/// e-mails and card numbers, as many as fit in 3,277 bytes.
fn customers_json() -> Bytes {
    let row = |i: usize| {
        format!(
            r#"{{"id":{i},"name":"Customer {i}","email":"customer.{i}@example.com","card":"4111 1111 1111 1111","city":"Lisbon","note":"regular order, deliver before noon"}}"#
        )
    };
    let mut rows: Vec<String> = (0..20).map(row).collect();
    let doc = |rows: &[String]| format!(r#"{{"customers":[{}],"page":1}}"#, rows.join(","));
    while doc(&rows).len() > 3277 {
        rows.pop();
    }
    Bytes::from(doc(&rows))
}

fn redact_spec() -> PluginSpec {
    spec(
        "redact",
        "redact",
        r#"{"fields":[{"match":"$..email","style":"hash"}],"detectors":{"card":"partial"},"hash_key":"bench-only-hmac-key-0123456789abcdef"}"#
            .into(),
    )
}

/// Nanoseconds per request through `chain` (request, response and log phases), over `n` requests;
/// the upstream's response carries `body` (JSON) when there is one.
async fn run(chain: &WasmChain, n: usize, body: Option<&Bytes>) -> f64 {
    let template = request();
    let mut resp_template = ResponseState {
        status: StatusCode::OK,
        body: body.cloned(),
        ..ResponseState::default()
    };
    if body.is_some() {
        resp_template.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let one = async || {
        let mut req = template.clone();
        let outcome = chain.on_request(&mut req).await.unwrap();
        let mut resp = resp_template.clone();
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
        let redact = load(&rt, vec![redact_spec()]).await;
        let json = customers_json();
        let mut cases = vec![
            (
                "5 headers".to_owned(),
                WasmChain::new(five.clone()),
                calls(&five),
                None,
            ),
            (
                "policy chain (7)".to_owned(),
                WasmChain::new(policy.clone()),
                calls(&policy),
                None,
            ),
            (
                format!("redact ({} B JSON)", json.len()),
                WasmChain::new(redact.clone()),
                calls(&redact),
                Some(json.clone()),
            ),
        ];
        // Each plugin of the policy chain alone, to see which one its time goes to.
        for plugin in &policy {
            let one = vec![Arc::clone(plugin)];
            let name = format!("policy: {}", plugin.name());
            cases.push((name, WasmChain::new(one.clone()), calls(&one), None));
        }
        let only = std::env::var("PLUGIN_BENCH_ONLY").unwrap_or_default();
        let base = run(&empty, n, None).await;
        let json_base = run(&empty, n, Some(&json)).await;
        println!("{n} requests per case, current-thread tokio runtime");
        println!("{:<22} {:>10.0} ns/request", "empty chain", base);
        for (name, chain, calls, body) in cases.iter().filter(|(name, ..)| name.contains(&*only)) {
            let t = run(chain, n, body.as_ref()).await;
            let floor = if body.is_some() { json_base } else { base };
            println!(
                "{name:<22} {t:>10.0} ns/request   {calls} calls   {:>6.0} ns per call",
                (t - floor) / *calls as f64
            );
        }
    });
}
