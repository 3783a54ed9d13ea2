//! The seam between the network side (server, proxy) and the Wasm side (runtime).
//!
//! The proxy knows nothing of wasmtime and the runtime nothing of hyper's server: they meet here,
//! in plain data types built on the `http` crate and one trait with a method per phase.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, StatusCode};

/// The per-request context: string values plugins set and read (`consumer`, `roles`, ...).
/// Hashed with hashbrown's default hasher (foldhash, seeded per process), not SipHash: a chain
/// makes a dozen look-ups per request, and the keys are the plugins' own, at most
/// `limits.max_context_keys` of them.
pub type Context = HashMap<String, String, hashbrown::DefaultHashBuilder>;

/// The request as plugins see and change it. The proxy builds it after routing and path
/// normalisation, hands it to the chain, and sends what comes back to the upstream.
#[derive(Debug, Clone)]
pub struct RequestState {
    /// Request method.
    pub method: Method,
    /// Normalised path: what routing saw and what the upstream receives.
    pub path: String,
    /// Raw query string, without `?`.
    pub query: Option<String>,
    /// Request headers (hop-by-hop headers already removed).
    pub headers: HeaderMap,
    /// The buffered body: read for a plugin (on demand, or up front for a 0.1.0 plugin that
    /// declared the body capability) or set by one.
    pub body: Option<Bytes>,
    /// The body not read yet, for a plugin that asks (`body()`); `None` once read or when the
    /// proxy buffered it up front.
    pub lazy_body: Option<LazyBody>,
    /// Set when the upstream failed and the gateway answered itself (for the log phase).
    pub upstream_error: Option<UpstreamFailure>,
    /// Client address.
    pub client_ip: IpAddr,
    /// The name of the matched route.
    pub route: Arc<str>,
    /// The request id (from `x-request-id` or generated).
    pub request_id: Arc<str>,
    /// Per-request context written and read by plugins.
    pub context: Context,
    /// The trace recorder of a sampled request (`[telemetry]`): plugin calls add their spans.
    /// `None` when tracing is off or the request was not sampled.
    pub trace: Option<Box<crate::telemetry::SpanRecorder>>,
    /// Bit `i`: the chain's `i`-th plugin serves this request with its canary version (decided
    /// in the request phase, so every phase of the request sees the same version).
    pub canary_versions: u64,
}

impl Default for RequestState {
    fn default() -> Self {
        Self {
            method: Method::GET,
            path: "/".to_owned(),
            query: None,
            headers: HeaderMap::new(),
            body: None,
            lazy_body: None,
            upstream_error: None,
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            route: Arc::from(""),
            request_id: Arc::from(""),
            context: Context::default(),
            trace: None,
            canary_versions: 0,
        }
    }
}

impl RequestState {
    /// The client address as text, written into one buffer of the longest address's size
    /// (`to_string` would grow its buffer as the formatter writes).
    pub fn client_ip_text(&self) -> String {
        use std::fmt::Write;
        let mut text = String::with_capacity(45);
        let _ = write!(text, "{}", self.client_ip);
        text
    }
}

/// The upstream's response as plugins see and change it in the response phase.
#[derive(Debug, Clone, Default)]
pub struct ResponseState {
    /// Status code.
    pub status: StatusCode,
    /// Response headers (hop-by-hop headers already removed).
    pub headers: HeaderMap,
    /// The buffered body: read for a plugin, or set by one.
    pub body: Option<Bytes>,
    /// The body not read yet, for a plugin that asks; `None` once read or buffered up front.
    pub lazy_body: Option<LazyBody>,
    /// Set when this response is the gateway's own answer to an upstream failure.
    pub upstream_error: Option<UpstreamFailure>,
}

/// Reads a body the first time a plugin asks for it. The proxy implements it over the client's
/// (or the upstream's) body stream, with its caps; the runtime calls it from `body()`.
pub trait BodyReader: Send + Sync + 'static {
    /// Read the whole body. Called at most once per body; the error is a message for the plugin
    /// (the proxy keeps its own record of why, to answer the client).
    fn read(self: Arc<Self>) -> BoxFuture<'static, Result<Bytes, String>>;
}

/// A body that is read when a plugin asks for it, or streamed when none does.
#[derive(Clone)]
pub struct LazyBody(Arc<dyn BodyReader>);

impl LazyBody {
    /// Wrap a reader.
    pub fn new(reader: Arc<dyn BodyReader>) -> Self {
        Self(reader)
    }

    /// Read the body (see [`BodyReader::read`]).
    pub fn read(&self) -> BoxFuture<'static, Result<Bytes, String>> {
        Arc::clone(&self.0).read()
    }
}

impl fmt::Debug for LazyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LazyBody")
    }
}

/// How an upstream exchange failed, when the gateway answers the failure itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailureKind {
    /// No connection could be made: the upstream never saw the request.
    Connect,
    /// No response head within the upstream's timeout.
    Timeout,
    /// The connection closed or reset before a complete response head.
    Reset,
    /// Anything else.
    Other,
}

impl UpstreamFailureKind {
    /// A stable name for logs (`connect`, `timeout`, `reset`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Other => "other",
        }
    }
}

/// An upstream failure the gateway answered itself (502/504), as plugins and the log see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFailure {
    /// What happened.
    pub kind: UpstreamFailureKind,
    /// False only when no request byte can have reached the upstream (it never connected).
    pub request_sent: bool,
    /// The status the gateway answered.
    pub status: u16,
    /// A short description (never request data).
    pub message: String,
}

/// A response made by a plugin instead of the upstream.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers; the proxy sets Content-Length.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// What happens after a phase.
#[derive(Debug, Clone)]
pub enum Flow {
    /// Go on (to the next plugin, the upstream, or the client).
    Continue,
    /// Answer the client with this reply.
    Respond(Reply),
}

/// The result of the request phase.
#[derive(Debug, Clone)]
pub struct RequestOutcome {
    /// How many plugins ran their request phase; the response phase runs for these, in reverse.
    pub ran: usize,
    /// Continue to the upstream, or answer directly.
    pub flow: Flow,
}

/// Why a plugin call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    Trap,
    /// The call ran past its CPU deadline.
    Timeout,
    /// The guest tried to grow memory past its cap.
    MemoryLimit,
    /// The guest returned something the host cannot use (bad status, bad header, ...).
    BadAction,
    /// The host could not get an instance (instantiation or init failed at run time).
    Unavailable,
    /// The shared state backend (Redis) failed during the call and the plugin's
    /// `on_state_error` is `fail-closed`. Not subject to `on_error`.
    StateUnavailable,
}

impl FailureKind {
    /// A stable, machine-readable name, used in JSON errors and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::BadAction => "bad_action",
            FailureKind::Unavailable => "unavailable",
            FailureKind::StateUnavailable => "state_unavailable",
        }
    }
}

/// A plugin failure that, under the plugin's `on_error` policy, must fail the request.
#[derive(Debug, Clone)]
pub struct PluginFailure {
    /// The plugin's name in the config.
    pub plugin: Arc<str>,
    /// What went wrong.
    pub kind: FailureKind,
    /// Detail for the log and the error body (never contains request data).
    pub message: String,
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin `{}` failed ({}): {}",
            self.plugin,
            self.kind.as_str(),
            self.message
        )
    }
}

impl std::error::Error for PluginFailure {}

/// A summary of a finished exchange for the log phase.
#[derive(Debug, Clone, Default)]
pub struct LogEntry {
    /// Status sent to the client.
    pub status: u16,
    /// Request body bytes received.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
    /// Whole-exchange duration in microseconds.
    pub duration_micros: u64,
    /// Upstream wait in microseconds, when the upstream was called.
    pub upstream_micros: Option<u64>,
    /// Upstream target that served the request.
    pub upstream: Option<String>,
}

/// A route's plugin chain. One implementation runs Wasm plugins; the proxy only sees this trait.
pub trait Chain: Send + Sync + 'static {
    /// True when the chain has no plugins: the proxy then skips its phases altogether.
    fn is_empty(&self) -> bool {
        false
    }

    /// True when some plugin declared it needs the request body (the proxy then buffers it).
    fn needs_request_body(&self) -> bool;

    /// True when some plugin declared it needs the response body.
    fn needs_response_body(&self) -> bool;

    /// True when some plugin takes part in the log phase.
    fn wants_log(&self) -> bool;

    /// True when some plugin may read the request after it went upstream (in a response or log
    /// phase). When none may and no retry can follow, the upstream request takes the request's
    /// headers instead of a copy of them.
    fn reads_request_after_forward(&self) -> bool {
        true
    }

    /// True when some plugin may read a body on demand (contract 0.2.0 `body()`): the proxy then
    /// hands the chain the body as a [`LazyBody`] and streams it when nobody read it.
    fn reads_bodies_on_demand(&self) -> bool {
        false
    }

    /// True when some plugin wants to hear of upstream failures (contract 0.2.0): the proxy then
    /// calls [`Chain::on_upstream_failure`] before it answers a 502/504 itself.
    fn hears_upstream_failures(&self) -> bool {
        false
    }

    /// Run the response phase, in reverse over the first `ran` plugins, for a response the
    /// gateway made itself because the upstream failed (`resp.upstream_error` is set). Only
    /// plugins that know about upstream errors (0.2.0) take part; by default none.
    fn on_upstream_failure<'a>(
        &'a self,
        req: &'a mut RequestState,
        resp: &'a mut ResponseState,
        ran: usize,
    ) -> BoxFuture<'a, Result<Flow, PluginFailure>> {
        let _ = (req, resp, ran);
        Box::pin(async { Ok(Flow::Continue) })
    }

    /// Run the request phase in chain order. Stops at the first `respond`.
    fn on_request<'a>(
        &'a self,
        req: &'a mut RequestState,
    ) -> BoxFuture<'a, Result<RequestOutcome, PluginFailure>>;

    /// Run the response phase in reverse order over the first `ran` plugins.
    fn on_response<'a>(
        &'a self,
        req: &'a mut RequestState,
        resp: &'a mut ResponseState,
        ran: usize,
    ) -> BoxFuture<'a, Result<Flow, PluginFailure>>;

    /// Run the log phase for every plugin that asked for it. Called after the response is sent.
    fn on_log(&self, req: RequestState, entry: LogEntry) -> BoxFuture<'static, ()>;
}

/// One HTTP request a plugin asks the gateway to send to a named upstream (`http-client.fetch`).
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Method.
    pub method: Method,
    /// Path and optional query, starting with `/`; the fetcher normalises the path by the
    /// gateway's one path rule.
    pub path_and_query: String,
    /// Request headers; hop-by-hop headers are dropped by the fetcher.
    pub headers: HeaderMap,
    /// Body (may be empty).
    pub body: Bytes,
    /// Deadline for the whole exchange; `None` means the upstream's request timeout.
    pub timeout: Option<std::time::Duration>,
}

/// An upstream's answer to a [`FetchRequest`], read whole.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers (hop-by-hop headers removed).
    pub headers: HeaderMap,
    /// Body, at most `limits.max_response_body_bytes`.
    pub body: Bytes,
}

/// Sends plugins' outgoing requests to configured upstreams. The proxy implements it with its
/// upstream pools and clients; the runtime calls it from the `http-client` import after checking
/// the plugin's `fetch` allow-list. Only upstreams of the current config can be reached, by name:
/// a plugin never chooses an address.
pub trait Fetcher: Send + Sync + 'static {
    /// Send `req` to the upstream named `upstream`; the error is a message for the plugin.
    fn fetch(
        &self,
        upstream: &str,
        req: FetchRequest,
    ) -> BoxFuture<'static, Result<FetchResponse, String>>;
}

/// A [`Fetcher`] that refuses everything (a runtime without a proxy, e.g. `tollgate check`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFetcher;

impl Fetcher for NoFetcher {
    fn fetch(
        &self,
        upstream: &str,
        _req: FetchRequest,
    ) -> BoxFuture<'static, Result<FetchResponse, String>> {
        let message = format!("upstream `{upstream}` cannot be reached: no proxy is running");
        Box::pin(async move { Err(message) })
    }
}
