//! Raw configuration as written in `gateway.toml`: serde types that reject unknown fields.
//! Nothing here is checked beyond its shape; `validate` turns these into `model` types.

use serde::Deserialize;

/// `[gateway]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub plugin_dir: Option<String>,
    pub cache_dir: Option<String>,
    pub watch: Option<bool>,
    pub trusted_proxies: Option<Vec<String>>,
    pub strip_identity_headers: Option<Vec<String>>,
    pub reject_underscore_headers: Option<bool>,
    pub trusted_keys: Option<Vec<String>>,
    pub require_signatures: Option<bool>,
}

/// `[[listeners]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: Option<String>,
    pub addr: String,
    pub tls: Option<RawListenerTls>,
    pub plain_http: Option<RawPlainHttp>,
    pub https_port: Option<u16>,
}

/// `[listeners.tls]` (docs/tls.md)
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerTls {
    pub certs: Vec<RawCertKey>,
    pub client_ca: Option<String>,
    pub client_auth: Option<RawClientAuth>,
    pub handshake_timeout_ms: Option<u64>,
}

/// `{ cert = "chain.pem", key = "key.pem" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertKey {
    pub cert: String,
    pub key: String,
}

/// `client_auth = "none" | "optional" | "required"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawClientAuth {
    None,
    Optional,
    Required,
}

/// `plain_http = "serve" | "redirect" | "refuse"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawPlainHttp {
    Serve,
    Redirect,
    Refuse,
}

/// `[upstreams.NAME.tls]` (docs/tls.md)
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub server_name: Option<String>,
    pub http2: Option<bool>,
}

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub addr: String,
    /// Name of the environment variable holding the bearer token.
    pub token_env: Option<String>,
    /// File holding the bearer token (surrounding whitespace trimmed).
    pub token_file: Option<String>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_header_count: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_body_bytes: Option<u64>,
    pub max_response_body_bytes: Option<u64>,
    pub plugin_context_keys: Option<u64>,
    pub plugin_context_bytes: Option<u64>,
    pub plugin_log_bytes: Option<u64>,
    pub plugin_metric_series: Option<u64>,
    pub plugin_state_key_bytes: Option<u64>,
    pub plugin_state_value_bytes: Option<u64>,
    pub plugin_fetch_requests: Option<u64>,
    pub plugin_fetch_bytes: Option<u64>,
    pub plugin_defers: Option<u64>,
    pub plugin_call_time_ms: Option<u64>,
    pub state_max_entries: Option<u64>,
    pub state_max_bytes: Option<u64>,
    pub max_buffered_bytes: Option<u64>,
}

/// `[server]`: connection handling of the client-facing listeners.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub drain_timeout_ms: Option<u64>,
    pub header_read_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub body_read_timeout_ms: Option<u64>,
    pub max_connections: Option<u64>,
    pub workers: Option<u64>,
    pub http2: Option<RawHttp2>,
}

/// `[server.http2]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp2 {
    pub max_concurrent_streams: Option<u64>,
    pub initial_stream_window_bytes: Option<u64>,
    pub initial_connection_window_bytes: Option<u64>,
    pub max_frame_bytes: Option<u64>,
    pub keep_alive_interval_ms: Option<u64>,
    pub keep_alive_timeout_ms: Option<u64>,
    pub max_pending_accept_reset_streams: Option<u64>,
    pub max_local_error_reset_streams: Option<u64>,
}

/// `[upstreams.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub targets: Vec<String>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    /// Let plugins `fetch` from link-local targets (169.254.0.0/16, fe80::/10).
    pub allow_link_local: Option<bool>,
    // Health, balancing and retries (see docs/upstreams.md).
    pub balance: Option<RawBalance>,
    pub health_check: Option<RawHealthCheck>,
    pub passive: Option<RawPassive>,
    pub retries: Option<u32>,
    pub retry_methods: Option<Vec<String>>,
    pub retry_budget_percent: Option<u32>,
    pub retry_budget_min_per_sec: Option<u32>,
    pub tls: Option<RawUpstreamTls>,
}

/// `balance = "round-robin" | "least-connections"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawBalance {
    RoundRobin,
    LeastConnections,
}

/// `[upstreams.NAME.health_check]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub path: Option<String>,
    pub interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
    pub expected_statuses: Option<Vec<u16>>,
}

/// `[upstreams.NAME.passive]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassive {
    pub max_failures: Option<u32>,
    pub ejection_ms: Option<u64>,
    pub max_ejection_ms: Option<u64>,
    pub eject_on_5xx: Option<bool>,
}

/// `[plugins.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    pub module: String,
    pub on_error: Option<RawOnError>,
    pub on_state_error: Option<RawOnError>,
    pub timeout_ms: Option<u64>,
    pub memory_limit_mb: Option<u64>,
    pub pool_size: Option<usize>,
    pub max_instances: Option<usize>,
    pub fetch: Option<Vec<String>>,
    pub config: Option<toml::Table>,
    pub canary: Option<RawCanary>,
}

/// `[plugins.NAME.canary]` (docs/rollout.md)
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    pub module: String,
    pub config: Option<toml::Table>,
    pub percent: f64,
    pub split: Option<String>,
    pub rollback: Option<RawRollback>,
}

/// `[plugins.NAME.canary.rollback]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollback {
    pub max_error_rate_points: Option<f64>,
    pub max_p99_ratio: Option<f64>,
    pub min_requests: Option<u64>,
    pub window_ms: Option<u64>,
    pub webhook: Option<String>,
}

/// `[state]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub backend: Option<RawStateBackend>,
    pub url: Option<String>,
    pub nodes: Option<Vec<String>>,
    pub timeout_ms: Option<u64>,
    pub key_prefix: Option<String>,
    pub write_behind_ms: Option<u64>,
}

/// `backend = "memory" | "redis" | "redis-cluster"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawStateBackend {
    Memory,
    Redis,
    RedisCluster,
}

/// `on_error` / `on_state_error` = `"fail-closed" | "fail-open"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawOnError {
    FailClosed,
    FailOpen,
}

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    pub hosts: Option<Vec<String>>,
    pub path: Option<String>,
    pub path_prefix: Option<String>,
    pub methods: Option<Vec<String>>,
    pub upstream: String,
    #[serde(default)]
    pub chain: Vec<String>,
    #[serde(default)]
    pub case_insensitive: bool,
    /// An RFC 3339 date, as a string or a TOML date-time.
    pub deprecated: Option<toml::Value>,
    /// An RFC 3339 date, as a string or a TOML date-time.
    pub sunset: Option<toml::Value>,
    pub deprecation_link: Option<String>,
}

/// `[access_log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    pub enabled: Option<bool>,
    pub destination: Option<RawAccessLogDestination>,
    pub path: Option<String>,
    pub buffer: Option<usize>,
}

/// `destination = "stdout" | "stderr" | "file"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawAccessLogDestination {
    Stdout,
    Stderr,
    File,
}

/// `[telemetry]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub endpoint: Option<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub sampling_ratio: Option<f64>,
    pub service_name: Option<String>,
    pub export_timeout_ms: Option<u64>,
    pub batch_size: Option<usize>,
    pub queue_size: Option<usize>,
    pub metrics_endpoint: Option<String>,
    pub metrics_interval_ms: Option<u64>,
}

/// The top-level keys, each kept as TOML so that every section (and every entry of a table of
/// entries) is deserialised on its own and reports its own errors.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "gateway",
    "listeners",
    "admin",
    "limits",
    "server",
    "state",
    "upstreams",
    "plugins",
    "routes",
    "access_log",
    "telemetry",
];
