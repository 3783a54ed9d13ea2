//! Run one plugin once, without a gateway: what `tollgate plugin test` and the test kit
//! (this module, used from an author's tests: docs/plugin-guide.md) are built on.
//!
//! The plugin is loaded by the same runtime the gateway uses (same engine, sandbox, imports and
//! limits), so what it decides here is what it decides in a chain. A [`TestRequest`] is fed to its
//! request phase; when it lets the request through and takes part in the response phase, a
//! [`TestResponse`] (200 and empty unless given) stands in for the upstream's answer; the log
//! phase runs last when the plugin asked for it. The [`Outcome`] says what it decided and what
//! it changed. Plugin log lines are captured by [`LogCapture`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::chain::{Chain, Flow, LogEntry, NoFetcher, RequestState, ResponseState};
use crate::config::{OnError, PluginSpec};
use crate::runtime::{
    LoadedPlugin, MemoryState, PluginCapabilities, PluginClock, Runtime, RuntimeOptions,
    StateBackend, SystemClock, WasmChain,
};

/// A request as a plugin author describes it (the `--request` JSON of `tollgate plugin test`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// Method (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// Path as the gateway would route it (default `/`). Normalised by the gateway's path rule.
    #[serde(default)]
    pub path: Option<String>,
    /// Query string without `?`.
    #[serde(default)]
    pub query: Option<String>,
    /// Headers: `{"name": "value"}` or `{"name": ["v1", "v2"]}`.
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// Body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Body as base64 (for binary bodies); not with `body`.
    #[serde(default)]
    pub body_base64: Option<String>,
    /// The client's IP address (default `127.0.0.1`).
    #[serde(default)]
    pub client_ip: Option<String>,
    /// The matched route's name (default `test`).
    #[serde(default)]
    pub route: Option<String>,
    /// Context values set by earlier plugins (e.g. `consumer` from `auth`).
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// The upstream's answer for the response phase (default 200, no headers, empty body).
    #[serde(default)]
    pub response: Option<TestResponse>,
}

/// The upstream's response fed to the response phase.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestResponse {
    /// Status (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Headers, as for the request.
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// Body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Body as base64; not with `body`.
    #[serde(default)]
    pub body_base64: Option<String>,
}

/// A header value or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values, in order.
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            Self::One(v) => vec![v.as_str()],
            Self::Many(vs) => vs.iter().map(String::as_str).collect(),
        }
    }
}

/// Sandbox limits and test doubles for the plugin under test.
pub struct LoadOptions {
    /// Linear memory cap per instance (the gateway's default is 32 MiB).
    pub memory_limit_mb: usize,
    /// CPU deadline per call (the gateway's default is 100 ms).
    pub timeout: Duration,
    /// Where compiled components are cached (`None`: compile every time).
    pub cache_dir: Option<PathBuf>,
    /// What the `clock` import answers.
    pub clock: Arc<dyn PluginClock>,
    /// Counters, values and token buckets the plugin sees through `state` (keys are
    /// `<name>:<key>`, `name` being the plugin's name below).
    pub state: Arc<dyn StateBackend>,
    /// The plugin's name (its `[plugins.NAME]`): namespaces its state keys and tags its logs.
    pub name: String,
    /// Let what the plugin prints (WASI stdout/stderr) through to this process's stderr.
    pub guest_output_to_stderr: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            memory_limit_mb: 32,
            timeout: Duration::from_millis(100),
            cache_dir: None,
            clock: Arc::new(SystemClock),
            state: Arc::new(MemoryState::new()),
            name: "plugin".to_owned(),
            guest_output_to_stderr: false,
        }
    }
}

/// Why a plugin could not be tested.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The request or response description is wrong.
    #[error("bad request description: {0}")]
    BadInput(String),
    /// The plugin did not load (unreadable file, not a plugin component, refused its config).
    #[error("{0}")]
    Load(String),
}

/// A header list as it comes out: `[name, value]` pairs in order, names lower case.
pub type HeaderList = Vec<(String, String)>;

/// The request as the plugin left it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequestView {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query.
    pub query: Option<String>,
    /// Headers.
    pub headers: HeaderList,
}

/// A response: the plugin's own (`respond`) or the upstream's after the response phase.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResponseView {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderList,
    /// Body as text (lossy when it is not UTF-8; see `body_base64`).
    pub body: String,
    /// Body as base64 when it is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// What changed in the per-request context.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ContextChanges {
    /// Keys set (or changed) by the plugin, with their new values.
    pub set: BTreeMap<String, String>,
    /// Keys the plugin removed.
    pub removed: Vec<String>,
}

/// A plugin failure (trap, deadline, memory cap, bad action).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailureView {
    /// Which phase failed.
    pub phase: &'static str,
    /// `trap`, `timeout`, `memory_limit`, `bad_action`, `unavailable`, `state_unavailable`.
    pub kind: &'static str,
    /// The host's message.
    pub message: String,
}

/// What the plugin decided for one request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// `continue`, `respond` or `failed`.
    pub action: &'static str,
    /// The plugin's reply (when it answered itself, in either phase) or the upstream's response
    /// after the response phase; `None` when it failed.
    pub response: Option<ResponseView>,
    /// The request as it would reach the upstream (or as it was when the plugin answered).
    pub request: RequestView,
    /// Context changes over all phases.
    pub context: ContextChanges,
    /// Phases that ran: `request`, `response`, `log`.
    pub phases: Vec<&'static str>,
    /// The failure, when `action` is `failed`.
    pub failure: Option<FailureView>,
}

/// A loaded plugin, ready to be fed requests.
pub struct PluginUnderTest {
    runtime: Runtime,
    plugin: Arc<LoadedPlugin>,
    chain: WasmChain,
}

impl std::fmt::Debug for PluginUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginUnderTest")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl PluginUnderTest {
    /// Load `module` (a component file) with `config_json` as its config, as the gateway would.
    pub async fn load(
        module: &Path,
        config_json: &str,
        opts: LoadOptions,
    ) -> Result<Self, TestError> {
        let memory_limit = opts.memory_limit_mb.saturating_mul(1 << 20);
        let runtime_opts = RuntimeOptions {
            cache_dir: opts.cache_dir,
            // One plugin, one or two instances: a small pool keeps the reservation small.
            max_instances: 8,
            guest_output_to_stderr: opts.guest_output_to_stderr,
            max_memory_bytes: (memory_limit as u64).max(RuntimeOptions::default().max_memory_bytes),
            ..RuntimeOptions::default()
        };
        let runtime =
            Runtime::with_clock(runtime_opts, opts.state, Arc::new(NoFetcher), opts.clock)
                .map_err(|e| TestError::Load(e.to_string()))?;
        let spec = PluginSpec {
            name: Arc::from(opts.name.as_str()),
            module: module.to_path_buf(),
            config_json: config_json.to_owned(),
            on_error: OnError::FailClosed,
            on_state_error: OnError::FailClosed,
            timeout: opts.timeout,
            memory_limit,
            pool_size: 1,
            max_instances: 64,
            fetch: Vec::new(),
        };
        let plugin = runtime
            .load_plugin(&spec)
            .await
            .map_err(|e| TestError::Load(e.to_string()))?;
        let chain = WasmChain::new(vec![Arc::clone(&plugin)]);
        Ok(Self {
            runtime,
            plugin,
            chain,
        })
    }

    /// What the plugin declared in `init`.
    pub fn capabilities(&self) -> PluginCapabilities {
        self.plugin.capabilities()
    }

    /// The contract version the component targets (`0.1.0`, `0.2.0`).
    pub fn contract_version(&self) -> crate::runtime::ContractVersion {
        self.plugin.contract_version()
    }

    /// The state backend the plugin uses (seed counters before a call, read them after).
    pub fn state(&self) -> &Arc<dyn StateBackend> {
        self.runtime.state()
    }

    /// Run the phases the plugin takes part in for one request.
    pub async fn run(&self, input: &TestRequest) -> Result<Outcome, TestError> {
        let caps = self.plugin.capabilities();
        // A 0.2.0 plugin reads bodies on demand: here they are simply there.
        let on_demand = self.contract_version() != crate::runtime::ContractVersion::V0_1;
        let mut req = request_state(input, caps.request_body || on_demand)?;
        let before_context = req.context.clone();
        let upstream = input.response.clone().unwrap_or_default();
        let mut resp = response_state(&upstream, caps.response_body || on_demand)?;
        let mut phases = Vec::new();

        if caps.request {
            phases.push("request");
        }
        let outcome = match self.chain.on_request(&mut req).await {
            Ok(outcome) => outcome,
            Err(failure) => return Ok(failed(&req, &before_context, phases, "request", failure)),
        };
        let (action, response) = match outcome.flow {
            Flow::Respond(reply) => (
                "respond",
                ResponseView::new(reply.status, &reply.headers, &reply.body),
            ),
            Flow::Continue => {
                if caps.response {
                    phases.push("response");
                }
                match self
                    .chain
                    .on_response(&mut req, &mut resp, outcome.ran)
                    .await
                {
                    Ok(Flow::Respond(reply)) => (
                        "respond",
                        ResponseView::new(reply.status, &reply.headers, &reply.body),
                    ),
                    Ok(Flow::Continue) => (
                        "continue",
                        ResponseView::new(
                            resp.status,
                            &resp.headers,
                            resp.body
                                .as_deref()
                                .unwrap_or(upstream_body(&upstream)?.as_ref()),
                        ),
                    ),
                    Err(failure) => {
                        return Ok(failed(&req, &before_context, phases, "response", failure));
                    }
                }
            }
        };
        if caps.log {
            phases.push("log");
            let entry = LogEntry {
                status: response.status,
                request_bytes: req.body.as_ref().map_or(0, |b| b.len() as u64),
                response_bytes: response.body.len() as u64,
                duration_micros: 0,
                upstream_micros: (action == "continue").then_some(0),
                upstream: (action == "continue").then(|| "test-upstream:80".to_owned()),
            };
            self.chain.on_log(req.clone(), entry).await;
        }
        Ok(Outcome {
            action,
            response: Some(response),
            request: RequestView::of(&req),
            context: context_changes(&before_context, &req.context),
            phases,
            failure: None,
        })
    }
}

fn failed(
    req: &RequestState,
    before: &std::collections::HashMap<String, String>,
    phases: Vec<&'static str>,
    phase: &'static str,
    failure: crate::chain::PluginFailure,
) -> Outcome {
    Outcome {
        action: "failed",
        response: None,
        request: RequestView::of(req),
        context: context_changes(before, &req.context),
        phases,
        failure: Some(FailureView {
            phase,
            kind: failure.kind.as_str(),
            message: failure.message,
        }),
    }
}

fn body_of(text: &Option<String>, b64: &Option<String>, what: &str) -> Result<Bytes, TestError> {
    match (text, b64) {
        (Some(_), Some(_)) => Err(TestError::BadInput(format!(
            "{what}: give `body` or `body_base64`, not both"
        ))),
        (Some(text), None) => Ok(Bytes::from(text.clone())),
        (None, Some(b64)) => BASE64
            .decode(b64.trim())
            .map(Bytes::from)
            .map_err(|e| TestError::BadInput(format!("{what}.body_base64: {e}"))),
        (None, None) => Ok(Bytes::new()),
    }
}

fn upstream_body(resp: &TestResponse) -> Result<Bytes, TestError> {
    body_of(&resp.body, &resp.body_base64, "response")
}

fn header_map(headers: &BTreeMap<String, OneOrMany>, what: &str) -> Result<HeaderMap, TestError> {
    let mut map = HeaderMap::new();
    for (name, values) in headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            TestError::BadInput(format!("{what}.headers: `{name}` is not a header name"))
        })?;
        for value in values.values() {
            let v = HeaderValue::from_str(value).map_err(|_| {
                TestError::BadInput(format!("{what}.headers.{name}: invalid header value"))
            })?;
            map.append(n.clone(), v);
        }
    }
    Ok(map)
}

fn request_state(input: &TestRequest, with_body: bool) -> Result<RequestState, TestError> {
    let method = input.method.as_deref().unwrap_or("GET");
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| TestError::BadInput(format!("request.method: `{method}` is not a method")))?;
    let raw_path = input.path.as_deref().unwrap_or("/");
    let path = crate::path::normalize_path(raw_path).map_err(|e| {
        TestError::BadInput(format!(
            "request.path: `{raw_path}` is refused by the path rule: {e}"
        ))
    })?;
    let client_ip: IpAddr = input
        .client_ip
        .as_deref()
        .unwrap_or("127.0.0.1")
        .parse()
        .map_err(|_| TestError::BadInput("request.client_ip: not an IP address".to_owned()))?;
    let body = body_of(&input.body, &input.body_base64, "request")?;
    Ok(RequestState {
        method,
        path,
        query: input.query.clone(),
        headers: header_map(&input.headers, "request")?,
        body: with_body.then_some(body),
        lazy_body: None,
        upstream_error: None,
        client_ip,
        route: Arc::from(input.route.as_deref().unwrap_or("test")),
        request_id: Arc::from("plugin-test"),
        context: input.context.clone().into_iter().collect(),
    })
}

fn response_state(input: &TestResponse, with_body: bool) -> Result<ResponseState, TestError> {
    let status = input.status.unwrap_or(200);
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| TestError::BadInput(format!("response.status: {status} is not a status")))?;
    let body = upstream_body(input)?;
    Ok(ResponseState {
        status,
        headers: header_map(&input.headers, "response")?,
        body: with_body.then_some(body),
        ..ResponseState::default()
    })
}

fn header_list(headers: &HeaderMap) -> HeaderList {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl RequestView {
    fn of(req: &RequestState) -> Self {
        Self {
            method: req.method.as_str().to_owned(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: header_list(&req.headers),
        }
    }
}

impl ResponseView {
    fn new(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let (body, body_base64) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), None),
            Err(_) => (
                String::from_utf8_lossy(body).into_owned(),
                Some(BASE64.encode(body)),
            ),
        };
        Self {
            status: status.as_u16(),
            headers: header_list(headers),
            body,
            body_base64,
        }
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl RequestView {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn context_changes(
    before: &std::collections::HashMap<String, String>,
    after: &std::collections::HashMap<String, String>,
) -> ContextChanges {
    let set = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut removed: Vec<String> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    removed.sort();
    ContextChanges { set, removed }
}

/// A fixed clock that a test can move: `now_millis` is what was set, `monotonic_nanos` follows.
#[derive(Debug, Clone)]
pub struct FixedClock {
    millis: Arc<std::sync::atomic::AtomicU64>,
}

impl FixedClock {
    /// A clock that reads `millis` since the Unix epoch.
    pub fn new(millis: u64) -> Self {
        Self {
            millis: Arc::new(std::sync::atomic::AtomicU64::new(millis)),
        }
    }

    /// Set the time.
    pub fn set(&self, millis: u64) {
        self.millis
            .store(millis, std::sync::atomic::Ordering::SeqCst);
    }

    /// Move the time forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl PluginClock for FixedClock {
    fn now_millis(&self) -> u64 {
        self.millis.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn monotonic_nanos(&self) -> u64 {
        self.now_millis().saturating_mul(1_000_000)
    }
}

/// One line a plugin wrote with the `log` import.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PluginLog {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

/// A `tracing` layer that keeps the lines plugins write with the `log` import (install it with
/// a subscriber around the calls; see `tollgate plugin test` and `host/tests/plugin_test_kit.rs`).
#[derive(Debug, Clone, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<PluginLog>>>,
}

impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take the lines captured so far.
    pub fn take(&self) -> Vec<PluginLog> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// The module whose events are plugin log lines.
const PLUGIN_LOG_TARGET: &str = "tollgate::runtime::host_imports";

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogCapture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != PLUGIN_LOG_TARGET {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    value.clone_into(&mut self.0);
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(PluginLog {
                level: event.metadata().level().as_str().to_ascii_lowercase(),
                message: message.0,
            });
        }
    }
}

/// Parse a plugin config file into the JSON text `init` receives: a `.json` file as it is,
/// anything else as TOML (the `[plugins.NAME.config]` table's content, without the header).
pub fn config_json_from_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config {}: {e}", path.display()))?;
    config_json_from_text(&text, path.extension().is_some_and(|e| e == "json"))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Like [`config_json_from_file`] on text.
pub fn config_json_from_text(text: &str, json: bool) -> Result<String, String> {
    if json {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if !value.is_object() {
            return Err("the config must be a JSON object".to_owned());
        }
        return Ok(value.to_string());
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("not TOML: {e}"))?;
    serde_json::to_string(&table).map_err(|e| e.to_string())
}
