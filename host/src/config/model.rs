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
}

/// The admin listener.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Address to bind (loopback only in this version).
    pub addr: SocketAddr,
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_count: 100,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            max_response_body_bytes: 10 * 1024 * 1024,
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

/// An upstream: a set of targets balanced round-robin.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Name.
    pub name: String,
    /// `host:port` targets.
    pub targets: Vec<String>,
    /// TCP connect timeout (502 beyond).
    pub connect_timeout: Duration,
    /// Time allowed for the upstream's response head (504 beyond).
    pub request_timeout: Duration,
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
}
