//! The validated configuration. Built from the raw TOML types by `validate`; everything here has
//! been checked, so the rest of the gateway can use it without re-checking.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

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

/// What the gateway does when a plugin traps, times out or returns garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Fail the request with a 5xx naming the plugin (default).
    FailClosed,
    /// Skip the plugin and go on with the chain.
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
    /// CPU deadline per call.
    pub timeout: Duration,
    /// Linear memory cap per instance in bytes.
    pub memory_limit: usize,
    /// Warm instances created at load time and kept idle.
    pub pool_size: usize,
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
