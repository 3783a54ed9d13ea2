//! The validated configuration. Built from the raw TOML types by `validate`; everything here has
//! been checked, so the rest of the gateway can use it without re-checking.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use ipnet::IpNet;

/// A whole, valid gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub source: PathBuf,
    /// Gateway-wide settings.
    pub gateway: GatewaySettings,
    /// Listeners for client traffic.
    pub listeners: Vec<Listener>,
    /// The admin listener, if enabled.
    pub admin: Option<Admin>,
    /// Request limits.
    pub limits: Limits,
    /// Connection handling of the client-facing listeners: timeouts, connection cap, HTTP/2
    /// settings, shutdown drain.
    pub server: ServerSettings,
    /// Where plugins' shared state lives.
    pub state: StateSettings,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, Upstream>,
    /// Plugin instances by name.
    pub plugins: BTreeMap<String, PluginSpec>,
    /// Routes, in file order.
    pub routes: Vec<Route>,
    /// The JSON access log (`[access_log]`).
    pub access_log: AccessLogSettings,
}

/// Gateway-wide settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where built-in plugin modules (`module = "headers"`) are found.
    pub plugin_dir: PathBuf,
    /// Where compiled plugins are cached (`<sha256>.cwasm`).
    pub cache_dir: PathBuf,
    /// Reload when the config file or a plugin module changes.
    pub watch: bool,
    /// Peers whose `X-Forwarded-For` is believed (see `proxy::client` for the rule).
    pub trusted_proxies: Vec<IpNet>,
    /// Request headers removed before the chain runs, so only plugins can set them.
    pub strip_identity_headers: Vec<HeaderPattern>,
    /// Refuse (400) requests with a header name containing `_`.
    pub reject_underscore_headers: bool,
}

/// The default of `[gateway] strip_identity_headers`: headers that carry an identity some
/// upstream may believe, which only a plugin (after authenticating) may set.
pub const DEFAULT_IDENTITY_HEADERS: &[&str] = &[
    "x-consumer-*",
    "x-authenticated-*",
    "remote-user",
    "x-remote-user",
    "x-user-id",
    "x-client-cert*",
];

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            plugin_dir: PathBuf::from(crate::config::DEFAULT_PLUGIN_DIR),
            cache_dir: PathBuf::from(".tollgate-cache"),
            watch: true,
            trusted_proxies: Vec::new(),
            strip_identity_headers: DEFAULT_IDENTITY_HEADERS
                .iter()
                .filter_map(|p| HeaderPattern::parse(p).ok())
                .collect(),
            reject_underscore_headers: true,
        }
    }
}

/// A header-name pattern: an exact lower-case name, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderPattern {
    /// This name exactly.
    Exact(String),
    /// Every name starting with this (the pattern without its `*`).
    Prefix(String),
}

impl HeaderPattern {
    /// Parse `name` or `prefix*` (case-insensitive; stored lower case). The name or prefix must be
    /// non-empty and made of header-name characters; `*` may only come last.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let lower = pattern.to_ascii_lowercase();
        let (stem, prefix) = match lower.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (lower.as_str(), false),
        };
        if stem.is_empty()
            || stem.contains('*')
            || http::HeaderName::from_bytes(stem.as_bytes()).is_err()
        {
            return Err(format!(
                "`{pattern}` is not a header name or a `prefix*` pattern"
            ));
        }
        Ok(if prefix {
            HeaderPattern::Prefix(stem.to_owned())
        } else {
            HeaderPattern::Exact(stem.to_owned())
        })
    }

    /// Does this lower-case header name match?
    pub fn matches(&self, name: &str) -> bool {
        match self {
            HeaderPattern::Exact(n) => name == n,
            HeaderPattern::Prefix(p) => name.starts_with(p.as_str()),
        }
    }
}

/// A client-facing listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Name, for logs.
    pub name: String,
    /// Address to bind.
    pub addr: SocketAddr,
    /// TLS termination (docs/tls.md).
    pub tls: Option<ListenerTls>,
    /// What plain-HTTP requests get on a listener without `tls`.
    pub plain_http: PlainHttp,
}

/// `[listeners.tls]`: certificates by SNI, optional client certificate verification.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// Certificates, the first being the default for clients without (or with an unknown) SNI.
    pub certs: Vec<TlsCertFiles>,
    /// CA bundle client certificates are verified against.
    pub client_ca: Option<crate::tls::CaBundle>,
    /// Whether clients must, may or must not present a certificate.
    pub client_auth: ClientAuth,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Every file read, for the file watcher.
    pub files: Vec<PathBuf>,
}

/// One certificate chain and key, read and checked.
#[derive(Debug, Clone)]
pub struct TlsCertFiles {
    /// The chain file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
    /// What they hold.
    pub material: crate::tls::CertKey,
}

/// `client_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A certificate is asked for; without one the request goes on with no identity, a bad
    /// one fails the handshake.
    Optional,
    /// The handshake fails without a certificate signed by the CA.
    Required,
}

/// `plain_http`: what a listener without TLS does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainHttp {
    /// Serve them (default).
    #[default]
    Serve,
    /// 308 to `https://HOST[:https_port]/path?query`.
    Redirect {
        /// The port in the `Location` (omitted when 443).
        https_port: u16,
    },
    /// 403 with a JSON body.
    Refuse,
}

/// The admin listener.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Address to bind. Anywhere but loopback needs a token (checked by `validate`).
    pub addr: SocketAddr,
    /// The bearer token every admin request must carry, when configured (always when `addr` is
    /// not loopback). Read from `token_env` or `token_file` at load; never has a default.
    pub token: Option<AdminToken>,
}

/// The admin API's bearer token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token; `None` when it is empty.
    pub fn new(token: String) -> Option<Self> {
        (!token.is_empty()).then_some(Self(token))
    }

    /// The secret itself (for the constant-time comparison in `admin`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// `[access_log]`: one JSON line per request, written off the request path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLogSettings {
    /// Off unless an `[access_log]` section exists (then on unless `enabled = false`).
    pub enabled: bool,
    /// Where lines go.
    pub destination: AccessLogDestination,
    /// Lines queued between requests and the writer; beyond, lines are dropped and counted.
    pub buffer: usize,
}

/// Where access log lines are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccessLogDestination {
    /// Standard output (default).
    #[default]
    Stdout,
    /// Standard error (shared with the gateway's own log).
    Stderr,
    /// Appended to this file (created when missing).
    File(PathBuf),
}

/// Limits applied to every request before the chain runs.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum number of request headers (431 beyond).
    pub max_header_count: usize,
    /// Maximum total size of request header names and values in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Maximum request body size in bytes (413 beyond); also the cap for buffered bodies.
    pub max_body_bytes: u64,
    /// Maximum buffered response body size when a plugin needs the response body (502 beyond).
    pub max_response_body_bytes: u64,
    /// Caps on what plugins hand the host (`plugin_*` and `state_*` keys).
    pub plugins: super::PluginLimits,
    /// Request-body bytes buffered for plugins across all requests at once (503 beyond).
    pub max_buffered_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_count: 100,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            max_response_body_bytes: 10 * 1024 * 1024,
            plugins: super::PluginLimits::default(),
            max_buffered_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[server]`: how the client-facing listeners treat connections. Read when the listeners start;
/// a reload that changes it warns that a restart is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// After SIGTERM/SIGINT, how long in-flight requests (and the log phase) may take before the
    /// process exits anyway.
    pub drain_timeout: Duration,
    /// Time from the first byte of an HTTP/1 request head to its end (slowloris); the
    /// connection is closed beyond it.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight and no byte of a new one
    /// (HTTP/1 keep-alive, idle HTTP/2); closed beyond it (HTTP/2 with GOAWAY).
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body; beyond it the request fails with 408
    /// and the upstream request is aborted.
    pub body_read_timeout: Duration,
    /// Open client connections per listener; past it a new connection gets a short 503 and is
    /// closed.
    pub max_connections: usize,
    /// Worker threads, each with its own runtime, listener sockets and upstream pools; `None`:
    /// one per CPU this process may run on.
    pub workers: Option<usize>,
    /// HTTP/2 stream and flow-control settings.
    pub http2: Http2Settings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            workers: None,
            http2: Http2Settings::default(),
        }
    }
}

/// `[server.http2]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: requests one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: bytes a client may send on one stream before it waits for
    /// the gateway to read.
    pub initial_stream_window_bytes: u32,
    /// The connection-level flow-control window.
    pub initial_connection_window_bytes: u32,
    /// SETTINGS_MAX_FRAME_SIZE (16 KiB to 16 MiB - 1).
    pub max_frame_bytes: u32,
    /// PING interval on idle connections, to find dead peers; `None` turns pings off.
    pub keep_alive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed.
    pub keep_alive_timeout: Duration,
    /// Streams the client opened and reset before the gateway accepted them; past this the
    /// connection gets GOAWAY (rapid-reset protection, CVE-2023-44487).
    pub max_pending_accept_reset_streams: usize,
    /// Streams the gateway reset because the client broke the protocol; past this the
    /// connection gets GOAWAY (RUSTSEC-2024-0003).
    pub max_local_error_reset_streams: usize,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 200,
            initial_stream_window_bytes: 1024 * 1024,
            initial_connection_window_bytes: 1024 * 1024,
            max_frame_bytes: 16 * 1024,
            keep_alive_interval: Some(Duration::from_secs(20)),
            keep_alive_timeout: Duration::from_secs(20),
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
        }
    }
}

/// `[state]`: the backend of the plugins' shared state (counters, values, token buckets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateSettings {
    /// In this process: exact, fast, lost on restart, not shared between gateways (default).
    #[default]
    Memory,
    /// In Redis, shared by every gateway with the same URL and key prefix.
    Redis {
        /// `redis://[user:password@]host:port[/db]` (validated by the client's URL parser).
        url: String,
        /// Bound on every state call.
        timeout: Duration,
        /// Prepended to every key.
        key_prefix: String,
    },
}

impl StateSettings {
    /// `memory` or `redis`, for logs and metric labels.
    pub fn backend_name(&self) -> &'static str {
        match self {
            StateSettings::Memory => "memory",
            StateSettings::Redis { .. } => "redis",
        }
    }
}

/// An upstream: a set of targets, balanced, health-checked and retried as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Name.
    pub name: String,
    /// `host:port` targets.
    pub targets: Vec<String>,
    /// TCP connect timeout (502 beyond).
    pub connect_timeout: Duration,
    /// Time allowed for the upstream's response head (504 beyond).
    pub request_timeout: Duration,
    /// Plugins may `fetch` from this upstream even when a target is link-local (169.254.0.0/16,
    /// fe80::/10: cloud metadata services live there). Off by default.
    pub allow_link_local: bool,
    /// How requests are spread over the targets.
    pub balance: Balance,
    /// Active health checks, when configured.
    pub health_check: Option<HealthCheck>,
    /// Passive ejection of targets that fail requests.
    pub passive: PassiveHealth,
    /// Retries of idempotent requests that never reached a target.
    pub retry: RetryPolicy,
    /// TLS to the targets (`https://` targets); `None` for plain HTTP.
    pub tls: Option<UpstreamTls>,
}

impl Default for Upstream {
    /// No targets, default timeouts, round-robin, passive ejection and retries at their defaults.
    fn default() -> Self {
        Self {
            name: String::new(),
            targets: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            allow_link_local: false,
            balance: Balance::default(),
            health_check: None,
            passive: PassiveHealth::default(),
            retry: RetryPolicy::default(),
            tls: None,
        }
    }
}

/// `balance`: how an upstream picks a target for each request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// Each available target in turn (default).
    #[default]
    RoundRobin,
    /// The available target with the fewest requests in flight (ties in turn).
    LeastConnections,
}

impl Balance {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round-robin",
            Balance::LeastConnections => "least-connections",
        }
    }
}

/// `[upstreams.NAME.health_check]`: a GET to every target each interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path (and query) requested, e.g. `/health`.
    pub path: String,
    /// Time between checks of one target.
    pub interval: Duration,
    /// Time allowed for the whole check (connect, head and body).
    pub timeout: Duration,
    /// Consecutive passing checks that make an unhealthy target healthy.
    pub healthy_threshold: u32,
    /// Consecutive failing checks that make a healthy target unhealthy.
    pub unhealthy_threshold: u32,
    /// Statuses that pass; empty means any 2xx.
    pub expected_statuses: Vec<u16>,
}

impl HealthCheck {
    /// Does this status pass the check?
    pub fn passes(&self, status: u16) -> bool {
        if self.expected_statuses.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expected_statuses.contains(&status)
        }
    }
}

/// `[upstreams.NAME.passive]`: ejecting targets that fail real requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveHealth {
    /// Consecutive failures that eject a target; 0 turns passive ejection off.
    pub max_failures: u32,
    /// The first ejection's length; each repeat doubles it, up to `max_ejection`.
    pub ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// Count 5xx responses as failures (connect errors, resets and timeouts always count).
    pub eject_on_5xx: bool,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        Self {
            max_failures: 5,
            ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            eject_on_5xx: false,
        }
    }
}

/// Retries of requests that never reached a target (connect refused, reset or timed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts per request, each on a different target; 0 turns retries off.
    pub retries: u32,
    /// Methods that may be retried (idempotent ones by default).
    pub methods: Vec<Method>,
    /// Retries allowed as a share of requests over the last 10 s.
    pub budget_percent: u32,
    /// Retries allowed per second on top of the share, so a quiet upstream can still retry.
    pub budget_min_per_sec: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 1,
            methods: vec![
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::PUT,
                Method::DELETE,
            ],
            budget_percent: 20,
            budget_min_per_sec: 3,
        }
    }
}

/// TLS to an upstream's targets (docs/tls.md).
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// Trust anchors; `None` = the Mozilla roots compiled in (webpki-roots).
    pub ca: Option<crate::tls::CaBundle>,
    /// Client certificate presented to the upstream.
    pub client_cert: Option<crate::tls::CertKey>,
    /// The name sent as SNI and verified in the upstream's certificate; `None` = the target host.
    pub server_name: Option<String>,
    /// Offer h2 by ALPN (otherwise HTTP/1.1 only).
    pub http2: bool,
    /// Every file read, for the file watcher.
    pub files: Vec<PathBuf>,
}

/// Equal when the settings and every file's contents are: what a reload compares to keep an
/// upstream's health state.
impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.cache_key() == other.cache_key()
    }
}

impl UpstreamTls {
    /// A key that changes whenever anything here does (file contents included): one pooled
    /// client per distinct key.
    pub fn cache_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        if let Some(ca) = &self.ca {
            h.update(b"ca");
            h.update(ca.digest);
        }
        if let Some(c) = &self.client_cert {
            h.update(b"client");
            h.update(c.digest);
        }
        if let Some(n) = &self.server_name {
            h.update(b"sni");
            h.update(n.as_bytes());
        }
        h.update([u8::from(self.http2)]);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What the gateway does when a plugin traps, times out or returns garbage (`on_error`), or
/// when the state backend fails during a plugin's call (`on_state_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Fail the request with a 5xx naming the plugin (default).
    FailClosed,
    /// `on_error`: skip the plugin and go on with the chain. `on_state_error`: keep the
    /// plugin's action (the plugin saw the error and decided).
    FailOpen,
}

/// A named plugin instance.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Name in the config (used in errors, metrics and state keys).
    pub name: Arc<str>,
    /// Resolved path of the component file.
    pub module: PathBuf,
    /// The plugin's `config` table as JSON text, passed to `init`.
    pub config_json: String,
    /// Failure policy.
    pub on_error: OnError,
    /// Policy when the state backend fails during a call (503 `state_unavailable` or not).
    pub on_state_error: OnError,
    /// CPU deadline per call.
    pub timeout: Duration,
    /// Linear memory cap per instance in bytes.
    pub memory_limit: usize,
    /// Warm instances created at load time and kept idle.
    pub pool_size: usize,
    /// Most instances alive at once (idle and busy); a call past it waits for one to come back,
    /// up to the call deadline, then fails `unavailable` (503).
    pub max_instances: usize,
    /// Upstreams the plugin may call through the `http-client` import (validated to exist).
    pub fetch: Vec<String>,
}

/// How a route matches the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The whole path equals this.
    Exact(String),
    /// The path is this prefix or continues it at a `/` boundary (`/api` matches `/api`,
    /// `/api/x`, not `/apix`). `/` matches everything.
    Prefix(String),
}

/// A route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name.
    pub name: Arc<str>,
    /// Host names (lower case, no port); `*.example.com` matches one or more labels; empty = any.
    pub hosts: Vec<String>,
    /// Path match.
    pub path: PathMatch,
    /// Allowed methods; empty = any.
    pub methods: Vec<Method>,
    /// Upstream name (validated to exist).
    pub upstream: String,
    /// Plugin names in chain order (validated to exist).
    pub chain: Vec<String>,
    /// Match the path ignoring ASCII case (`case_insensitive = true`), for upstreams that serve
    /// `/Admin` as `/admin`.
    pub case_insensitive: bool,
}
