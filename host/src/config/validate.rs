//! Turns a parsed TOML document into a validated [`Config`], collecting every issue with its
//! TOML path before failing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use ipnet::IpNet;
use serde::de::DeserializeOwned;

use super::error::{ConfigError, Issues};
use super::model::*;
use super::raw::*;

mod resilience;
mod tls;

/// Defaults for plugin entries.
/// Wall-clock deadline per plugin call. A warm call takes microseconds; the margin covers a
/// worker thread being descheduled on a busy machine, which the epoch clock also counts.
const DEFAULT_PLUGIN_TIMEOUT_MS: u64 = 100;
const DEFAULT_PLUGIN_MEMORY_MB: u64 = 32;
const DEFAULT_POOL_SIZE: usize = 2;
/// Most instances of one plugin alive at once (warm and busy), so one slow plugin cannot take
/// every slot of the runtime's pool.
const DEFAULT_MAX_INSTANCES: usize = 64;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Where `module = "NAME"` finds built-in plugins, relative to the config file.
pub const DEFAULT_PLUGIN_DIR: &str = "plugins/target/wasm32-wasip2/release";
const DEFAULT_CACHE_DIR: &str = ".tollgate-cache";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_STATE_TIMEOUT_MS: u64 = 50;
const MAX_STATE_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_REDIS_KEY_PREFIX: &str = "tollgate:";
const DEFAULT_ACCESS_LOG_BUFFER: usize = 16_384;

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parse and validate config text; `path` locates relative module and cache paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let mut issues = Issues::default();
    let config = Validator {
        issues: &mut issues,
        base,
    }
    .config(doc, path);
    match config {
        Some(config) if issues.0.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid {
            path: path.to_owned(),
            issues: issues.0,
        }),
    }
}

struct Validator<'a> {
    issues: &'a mut Issues,
    base: PathBuf,
}

impl Validator<'_> {
    /// Deserialize one value, reporting a failure at its full TOML path.
    fn de<T: DeserializeOwned>(&mut self, path: &str, value: toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let inner = e.path().to_string();
                let full = match (path.is_empty(), inner == ".") {
                    (_, true) => path.to_owned(),
                    (true, false) => inner,
                    (false, false) if inner.starts_with('[') => format!("{path}{inner}"),
                    (false, false) => format!("{path}.{inner}"),
                };
                // The toml deserializer appends "in `field`" lines; the path already says where.
                let message = e.into_inner().to_string();
                let message: Vec<&str> = message
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("in `"))
                    .collect();
                self.issues
                    .push(full, message.join(" ").trim_end().to_owned());
                None
            }
        }
    }

    fn config(&mut self, mut doc: toml::Table, source: &Path) -> Option<Config> {
        let unknown: Vec<String> = doc
            .keys()
            .filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.issues.push(
                key,
                format!(
                    "unknown section, expected one of: {}",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            );
        }

        let gateway = match doc.remove("gateway") {
            Some(v) => self.de::<RawGateway>("gateway", v).unwrap_or_default(),
            None => RawGateway::default(),
        };
        let defaults = GatewaySettings::default();
        let trusted_proxies = self.trusted_proxies(gateway.trusted_proxies.unwrap_or_default());
        let strip_identity_headers = match gateway.strip_identity_headers {
            Some(patterns) => self.header_patterns(patterns),
            None => defaults.strip_identity_headers,
        };
        let gateway = GatewaySettings {
            plugin_dir: self
                .base
                .join(gateway.plugin_dir.as_deref().unwrap_or(DEFAULT_PLUGIN_DIR)),
            cache_dir: self
                .base
                .join(gateway.cache_dir.as_deref().unwrap_or(DEFAULT_CACHE_DIR)),
            watch: gateway.watch.unwrap_or(true),
            trusted_proxies,
            strip_identity_headers,
            reject_underscore_headers: gateway
                .reject_underscore_headers
                .unwrap_or(defaults.reject_underscore_headers),
        };

        let listeners = self.listeners(doc.remove("listeners"));
        let admin = self.admin(doc.remove("admin"));
        let limits = self.limits(doc.remove("limits"));
        let server = self.server(doc.remove("server"));
        let state = self.state(doc.remove("state"));
        let upstreams = self.upstreams(doc.remove("upstreams"));
        let plugins = self.plugins(doc.remove("plugins"), &gateway.plugin_dir, &upstreams);
        let routes = self.routes(doc.remove("routes"), &upstreams, &plugins);
        self.fetch_targets(&plugins, &upstreams, admin.as_ref());
        let access_log = self.access_log(doc.remove("access_log"));

        Some(Config {
            source: source.to_owned(),
            gateway,
            listeners,
            admin,
            limits,
            server,
            state,
            upstreams,
            plugins,
            routes,
            access_log,
        })
    }

    /// `trusted_proxies = ["10.0.0.0/8", "::1/128", "192.0.2.7"]`: CIDRs, or single addresses.
    fn trusted_proxies(&mut self, raw: Vec<String>) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, cidr) in raw.iter().enumerate() {
            let parsed = cidr
                .parse::<IpNet>()
                .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                // `10.1.2.3/8` means `10.0.0.0/8`; store it in that form.
                Ok(net) => out.push(net.trunc()),
                Err(_) => self.issues.push(
                    format!("gateway.trusted_proxies[{i}]"),
                    format!(
                        "`{cidr}` is not an IP network (e.g. \"10.0.0.0/8\", \"::1/128\") or address"
                    ),
                ),
            }
        }
        out
    }

    fn header_patterns(&mut self, raw: Vec<String>) -> Vec<HeaderPattern> {
        let mut out = Vec::new();
        for (i, pattern) in raw.iter().enumerate() {
            match HeaderPattern::parse(pattern) {
                Ok(p) => out.push(p),
                Err(why) => self
                    .issues
                    .push(format!("gateway.strip_identity_headers[{i}]"), why),
            }
        }
        out
    }

    fn listeners(&mut self, value: Option<toml::Value>) -> Vec<Listener> {
        let Some(value) = value else {
            self.issues
                .push("listeners", "at least one [[listeners]] entry is required");
            return Vec::new();
        };
        let raw: Vec<RawListener> = self.de("listeners", value).unwrap_or_default();
        let mut out = Vec::new();
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        for (i, l) in raw.into_iter().enumerate() {
            let path = format!("listeners[{i}]");
            let name = l.name.unwrap_or_else(|| format!("listener-{i}"));
            if !names.insert(name.clone()) {
                self.issues.push(
                    format!("{path}.name"),
                    format!("duplicate listener name `{name}`"),
                );
            }
            match l.addr.parse::<SocketAddr>() {
                Ok(addr) => {
                    if addr.port() != 0 && !addrs.insert(addr) {
                        self.issues.push(
                            format!("{path}.addr"),
                            format!("address {addr} is used twice"),
                        );
                    }
                    let (tls, plain_http) =
                        self.listener_security(&path, l.tls, l.plain_http, l.https_port);
                    out.push(Listener {
                        name,
                        addr,
                        tls,
                        plain_http,
                    });
                }
                Err(_) => self.issues.push(
                    format!("{path}.addr"),
                    format!(
                        "`{}` is not an IP:port address (e.g. \"0.0.0.0:8080\")",
                        l.addr
                    ),
                ),
            }
        }
        out
    }

    fn admin(&mut self, value: Option<toml::Value>) -> Option<Admin> {
        let raw: RawAdmin = self.de("admin", value?)?;
        let token = self.admin_token(raw.token_env.as_deref(), raw.token_file.as_deref());
        let addr = match raw.addr.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                self.issues.push(
                    "admin.addr",
                    format!(
                        "`{}` is not an IP:port address (e.g. \"127.0.0.1:9090\")",
                        raw.addr
                    ),
                );
                return None;
            }
        };
        // Off loopback the admin API answers only with a token; there is no default token.
        let configured = raw.token_env.is_some() || raw.token_file.is_some();
        if !addr.ip().is_loopback() && !configured {
            self.issues.push(
                "admin.addr",
                format!(
                    "{addr} is not a loopback address: set `token_env` or `token_file` so the admin API requires a bearer token"
                ),
            );
            return None;
        }
        Some(Admin { addr, token })
    }

    /// Read the admin token from `token_env` or `token_file` (one of them, never empty).
    fn admin_token(&mut self, env: Option<&str>, file: Option<&str>) -> Option<AdminToken> {
        match (env, file) {
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.issues.push(
                    "admin.token_file",
                    "set either `token_env` or `token_file`, not both",
                );
                None
            }
            (Some(var), None) => {
                let token = std::env::var(var).ok().map(|t| t.trim().to_owned());
                let token = token.and_then(AdminToken::new);
                if token.is_none() {
                    self.issues.push(
                        "admin.token_env",
                        format!("environment variable `{var}` is not set or is empty"),
                    );
                }
                token
            }
            (None, Some(file)) => {
                let path = self.base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let token = AdminToken::new(text.trim().to_owned());
                        if token.is_none() {
                            self.issues
                                .push("admin.token_file", format!("`{file}` is empty"));
                        }
                        token
                    }
                    Err(e) => {
                        self.issues
                            .push("admin.token_file", format!("cannot read `{file}`: {e}"));
                        None
                    }
                }
            }
        }
    }

    /// `[access_log]`: present means on (unless `enabled = false`); `file` needs `path`.
    fn access_log(&mut self, value: Option<toml::Value>) -> AccessLogSettings {
        let mut settings = AccessLogSettings {
            buffer: DEFAULT_ACCESS_LOG_BUFFER,
            ..AccessLogSettings::default()
        };
        let Some(value) = value else {
            return settings;
        };
        let Some(raw) = self.de::<RawAccessLog>("access_log", value) else {
            return settings;
        };
        settings.enabled = raw.enabled.unwrap_or(true);
        if let Some(buffer) = raw.buffer {
            if buffer == 0 {
                self.issues
                    .push("access_log.buffer", "must be greater than 0");
            } else {
                settings.buffer = buffer;
            }
        }
        settings.destination = match (raw.destination, raw.path) {
            (Some(RawAccessLogDestination::File), Some(path)) if !path.is_empty() => {
                AccessLogDestination::File(self.base.join(path))
            }
            (Some(RawAccessLogDestination::File), _) => {
                self.issues
                    .push("access_log.path", "`destination = \"file\"` needs a `path`");
                AccessLogDestination::Stdout
            }
            (_, Some(_)) => {
                self.issues.push(
                    "access_log.path",
                    "`path` is only used with `destination = \"file\"`",
                );
                AccessLogDestination::Stdout
            }
            (Some(RawAccessLogDestination::Stderr), None) => AccessLogDestination::Stderr,
            (Some(RawAccessLogDestination::Stdout) | None, None) => AccessLogDestination::Stdout,
        };
        settings
    }

    fn limits(&mut self, value: Option<toml::Value>) -> Limits {
        let defaults = Limits::default();
        let Some(value) = value else {
            return defaults;
        };
        let Some(raw) = self.de::<RawLimits>("limits", value) else {
            return defaults;
        };
        let mut positive = |name: &str, v: Option<u64>, default: u64| -> u64 {
            match v {
                Some(0) => {
                    self.issues
                        .push(format!("limits.{name}"), "must be greater than 0");
                    default
                }
                Some(v) => v,
                None => default,
            }
        };
        let max_header_count = positive(
            "max_header_count",
            raw.max_header_count.map(|v| v as u64),
            defaults.max_header_count as u64,
        ) as usize;
        let max_header_bytes = positive(
            "max_header_bytes",
            raw.max_header_bytes.map(|v| v as u64),
            defaults.max_header_bytes as u64,
        ) as usize;
        let p = defaults.plugins;
        let mut size = |name: &str, v: Option<u64>, default: usize| {
            usize::try_from(positive(name, v, default as u64)).unwrap_or(usize::MAX)
        };
        let plugins = crate::config::PluginLimits {
            max_header_count,
            max_header_bytes,
            max_context_keys: size(
                "plugin_context_keys",
                raw.plugin_context_keys,
                p.max_context_keys,
            ),
            max_context_bytes: size(
                "plugin_context_bytes",
                raw.plugin_context_bytes,
                p.max_context_bytes,
            ),
            max_log_bytes: size("plugin_log_bytes", raw.plugin_log_bytes, p.max_log_bytes),
            max_metric_series: size(
                "plugin_metric_series",
                raw.plugin_metric_series,
                p.max_metric_series,
            ),
            max_state_key_bytes: size(
                "plugin_state_key_bytes",
                raw.plugin_state_key_bytes,
                p.max_state_key_bytes,
            ),
            max_state_value_bytes: size(
                "plugin_state_value_bytes",
                raw.plugin_state_value_bytes,
                p.max_state_value_bytes,
            ),
            max_fetch_requests: u32::try_from(size(
                "plugin_fetch_requests",
                raw.plugin_fetch_requests,
                p.max_fetch_requests as usize,
            ))
            .unwrap_or(u32::MAX),
            max_fetch_bytes: size(
                "plugin_fetch_bytes",
                raw.plugin_fetch_bytes,
                p.max_fetch_bytes as usize,
            ) as u64,
            max_defers: u32::try_from(size(
                "plugin_defers",
                raw.plugin_defers,
                p.max_defers as usize,
            ))
            .unwrap_or(u32::MAX),
            max_call_time: std::time::Duration::from_millis(size(
                "plugin_call_time_ms",
                raw.plugin_call_time_ms,
                p.max_call_time.as_millis() as usize,
            ) as u64),
            state_max_entries: size(
                "state_max_entries",
                raw.state_max_entries,
                p.state_max_entries,
            ),
            state_max_bytes: size("state_max_bytes", raw.state_max_bytes, p.state_max_bytes),
        };
        let mut limits = Limits {
            max_header_count,
            max_header_bytes,
            plugins,
            max_body_bytes: positive(
                "max_body_bytes",
                raw.max_body_bytes,
                defaults.max_body_bytes,
            ),
            max_response_body_bytes: positive(
                "max_response_body_bytes",
                raw.max_response_body_bytes,
                defaults.max_response_body_bytes,
            ),
            max_buffered_bytes: positive(
                "max_buffered_bytes",
                raw.max_buffered_bytes,
                defaults.max_buffered_bytes,
            ),
        };
        // One largest body must fit the global budget, or it could never be buffered.
        match raw.max_buffered_bytes {
            Some(set) if set > 0 && set < limits.max_body_bytes => self.issues.push(
                "limits.max_buffered_bytes",
                format!(
                    "must be at least limits.max_body_bytes ({})",
                    limits.max_body_bytes
                ),
            ),
            None => {
                limits.max_buffered_bytes = limits.max_buffered_bytes.max(limits.max_body_bytes)
            }
            _ => {}
        }
        limits
    }

    /// `[server]` and `[server.http2]`: every value within its range, or an issue at its path.
    fn server(&mut self, value: Option<toml::Value>) -> ServerSettings {
        let defaults = ServerSettings::default();
        let Some(value) = value else {
            return defaults;
        };
        let Some(raw) = self.de::<RawServer>("server", value) else {
            return defaults;
        };
        let mut range = |path: &str, v: Option<u64>, default: u64, min: u64, max: u64| match v {
            Some(v) if v < min || v > max => {
                self.issues.push(
                    format!("server.{path}"),
                    format!("must be between {min} and {max}"),
                );
                default
            }
            Some(v) => v,
            None => default,
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let day = 24 * 60 * 60 * 1000;
        let server = ServerSettings {
            drain_timeout: Duration::from_millis(range(
                "drain_timeout_ms",
                raw.drain_timeout_ms,
                ms(defaults.drain_timeout),
                1,
                day,
            )),
            header_read_timeout: Duration::from_millis(range(
                "header_read_timeout_ms",
                raw.header_read_timeout_ms,
                ms(defaults.header_read_timeout),
                1,
                day,
            )),
            idle_timeout: Duration::from_millis(range(
                "idle_timeout_ms",
                raw.idle_timeout_ms,
                ms(defaults.idle_timeout),
                1,
                day,
            )),
            body_read_timeout: Duration::from_millis(range(
                "body_read_timeout_ms",
                raw.body_read_timeout_ms,
                ms(defaults.body_read_timeout),
                1,
                day,
            )),
            // The cap is a semaphore; bound it well below what the OS could ever give.
            max_connections: range(
                "max_connections",
                raw.max_connections,
                defaults.max_connections as u64,
                1,
                10_000_000,
            ) as usize,
            workers: raw
                .workers
                .map(|_| range("workers", raw.workers, 1, 1, 1024) as usize),
            http2: defaults.http2.clone(),
        };
        let Some(h2) = raw.http2 else {
            return server;
        };
        let d = defaults.http2;
        // Limits from RFC 9113 §6.5.2 (window ≤ 2^31-1, frame size 2^14..2^24-1); the h2 crate
        // panics outside them, so they are refused here.
        const MAX_WINDOW: u64 = (1 << 31) - 1;
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let http2 = Http2Settings {
            max_concurrent_streams: u32_of(range(
                "http2.max_concurrent_streams",
                h2.max_concurrent_streams,
                u64::from(d.max_concurrent_streams),
                1,
                u64::from(u32::MAX),
            )),
            initial_stream_window_bytes: u32_of(range(
                "http2.initial_stream_window_bytes",
                h2.initial_stream_window_bytes,
                u64::from(d.initial_stream_window_bytes),
                1024,
                MAX_WINDOW,
            )),
            initial_connection_window_bytes: u32_of(range(
                "http2.initial_connection_window_bytes",
                h2.initial_connection_window_bytes,
                u64::from(d.initial_connection_window_bytes),
                65_535,
                MAX_WINDOW,
            )),
            max_frame_bytes: u32_of(range(
                "http2.max_frame_bytes",
                h2.max_frame_bytes,
                u64::from(d.max_frame_bytes),
                16_384,
                16_777_215,
            )),
            // 0 turns pings off.
            keep_alive_interval: match range(
                "http2.keep_alive_interval_ms",
                h2.keep_alive_interval_ms,
                d.keep_alive_interval.map(ms).unwrap_or(0),
                0,
                day,
            ) {
                0 => None,
                v => Some(Duration::from_millis(v)),
            },
            keep_alive_timeout: Duration::from_millis(range(
                "http2.keep_alive_timeout_ms",
                h2.keep_alive_timeout_ms,
                ms(d.keep_alive_timeout),
                1,
                day,
            )),
            max_pending_accept_reset_streams: range(
                "http2.max_pending_accept_reset_streams",
                h2.max_pending_accept_reset_streams,
                d.max_pending_accept_reset_streams as u64,
                1,
                1_000_000,
            ) as usize,
            max_local_error_reset_streams: range(
                "http2.max_local_error_reset_streams",
                h2.max_local_error_reset_streams,
                d.max_local_error_reset_streams as u64,
                1,
                1_000_000,
            ) as usize,
        };
        ServerSettings { http2, ..server }
    }

    fn state(&mut self, value: Option<toml::Value>) -> StateSettings {
        let Some(value) = value else {
            return StateSettings::Memory;
        };
        let Some(raw) = self.de::<RawState>("state", value) else {
            return StateSettings::Memory;
        };
        match raw.backend.unwrap_or(RawStateBackend::Memory) {
            RawStateBackend::Memory => {
                for (field, set) in [
                    ("url", raw.url.is_some()),
                    ("timeout_ms", raw.timeout_ms.is_some()),
                    ("key_prefix", raw.key_prefix.is_some()),
                ] {
                    if set {
                        self.issues.push(
                            format!("state.{field}"),
                            "is only used with backend = \"redis\"",
                        );
                    }
                }
                StateSettings::Memory
            }
            RawStateBackend::Redis => {
                let url = raw.url.unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
                if let Err(e) = redis::Client::open(url.as_str()) {
                    self.issues.push(
                        "state.url",
                        format!("`{url}` is not a usable Redis URL (redis://host:port[/db]): {e}"),
                    );
                }
                let timeout = match raw.timeout_ms {
                    Some(ms) if !(1..=MAX_STATE_TIMEOUT_MS).contains(&ms) => {
                        self.issues.push(
                            "state.timeout_ms",
                            format!("must be between 1 and {MAX_STATE_TIMEOUT_MS}"),
                        );
                        DEFAULT_STATE_TIMEOUT_MS
                    }
                    Some(ms) => ms,
                    None => DEFAULT_STATE_TIMEOUT_MS,
                };
                StateSettings::Redis {
                    url,
                    timeout: Duration::from_millis(timeout),
                    key_prefix: raw
                        .key_prefix
                        .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned()),
                }
            }
        }
    }

    fn entries(
        &mut self,
        section: &str,
        value: Option<toml::Value>,
    ) -> BTreeMap<String, toml::Value> {
        match value {
            None => BTreeMap::new(),
            Some(toml::Value::Table(t)) => t.into_iter().collect(),
            Some(_) => {
                self.issues.push(
                    section,
                    format!("must be a table of named entries ([{section}.NAME])"),
                );
                BTreeMap::new()
            }
        }
    }

    fn upstreams(&mut self, value: Option<toml::Value>) -> BTreeMap<String, Upstream> {
        let mut out = BTreeMap::new();
        for (name, value) in self.entries("upstreams", value) {
            let path = format!("upstreams.{name}");
            check_name(self.issues, &path, &name);
            let Some(raw) = self.de::<RawUpstream>(&path, value) else {
                continue;
            };
            if raw.targets.is_empty() {
                self.issues
                    .push(format!("{path}.targets"), "needs at least one target");
            }
            let resilience = self.resilience(&path, &raw);
            // `https://` targets and `tls` (docs/tls.md); targets come back as `host:port`.
            let (targets, tls) = self.upstream_targets(&path, raw.targets, raw.tls);
            let connect = self.millis(
                &path,
                "connect_timeout_ms",
                raw.connect_timeout_ms,
                DEFAULT_CONNECT_TIMEOUT_MS,
            );
            let request = self.millis(
                &path,
                "request_timeout_ms",
                raw.request_timeout_ms,
                DEFAULT_REQUEST_TIMEOUT_MS,
            );
            out.insert(
                name.clone(),
                Upstream {
                    name,
                    targets,
                    connect_timeout: connect,
                    request_timeout: request,
                    allow_link_local: raw.allow_link_local.unwrap_or(false),
                    tls,
                    ..resilience
                },
            );
        }
        out
    }

    fn millis(&mut self, path: &str, field: &str, v: Option<u64>, default: u64) -> Duration {
        match v {
            Some(0) => {
                self.issues
                    .push(format!("{path}.{field}"), "must be greater than 0");
                Duration::from_millis(default)
            }
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_millis(default),
        }
    }

    fn plugins(
        &mut self,
        value: Option<toml::Value>,
        plugin_dir: &Path,
        upstreams: &BTreeMap<String, Upstream>,
    ) -> BTreeMap<String, PluginSpec> {
        let mut out = BTreeMap::new();
        for (name, value) in self.entries("plugins", value) {
            let path = format!("plugins.{name}");
            check_name(self.issues, &path, &name);
            let Some(raw) = self.de::<RawPlugin>(&path, value) else {
                continue;
            };
            let fetch = raw.fetch.unwrap_or_default();
            for (j, upstream) in fetch.iter().enumerate() {
                if !upstreams.contains_key(upstream) {
                    self.issues.push(
                        format!("{path}.fetch[{j}]"),
                        format!("unknown upstream `{upstream}`{}", known(upstreams.keys())),
                    );
                }
            }
            let module = match self.module_path(&raw.module, plugin_dir) {
                Ok(m) => m,
                Err(why) => {
                    self.issues.push(format!("{path}.module"), why);
                    continue;
                }
            };
            let config_json = match serde_json::to_string(&raw.config.unwrap_or_default()) {
                Ok(json) => json,
                Err(e) => {
                    self.issues.push(
                        format!("{path}.config"),
                        format!("cannot be passed to the plugin: {e}"),
                    );
                    continue;
                }
            };
            let timeout = self.millis(
                &path,
                "timeout_ms",
                raw.timeout_ms,
                DEFAULT_PLUGIN_TIMEOUT_MS,
            );
            let memory_mb = match raw.memory_limit_mb {
                Some(0) => {
                    self.issues
                        .push(format!("{path}.memory_limit_mb"), "must be greater than 0");
                    DEFAULT_PLUGIN_MEMORY_MB
                }
                Some(mb) if mb > 4096 => {
                    self.issues.push(
                        format!("{path}.memory_limit_mb"),
                        "must be at most 4096 (4 GiB)",
                    );
                    DEFAULT_PLUGIN_MEMORY_MB
                }
                Some(mb) => mb,
                None => DEFAULT_PLUGIN_MEMORY_MB,
            };
            let pool_size = match raw.pool_size {
                Some(0) => {
                    self.issues
                        .push(format!("{path}.pool_size"), "must be at least 1");
                    DEFAULT_POOL_SIZE
                }
                Some(n) => n,
                None => DEFAULT_POOL_SIZE,
            };
            let max_instances = match raw.max_instances {
                Some(n) if n < pool_size => {
                    self.issues.push(
                        format!("{path}.max_instances"),
                        format!("must be at least pool_size ({pool_size})"),
                    );
                    pool_size
                }
                Some(n) => n,
                None => DEFAULT_MAX_INSTANCES.max(pool_size),
            };
            out.insert(
                name.clone(),
                PluginSpec {
                    name: Arc::from(name.as_str()),
                    module,
                    config_json,
                    on_error: match raw.on_error {
                        Some(RawOnError::FailOpen) => OnError::FailOpen,
                        Some(RawOnError::FailClosed) | None => OnError::FailClosed,
                    },
                    on_state_error: match raw.on_state_error {
                        Some(RawOnError::FailOpen) => OnError::FailOpen,
                        Some(RawOnError::FailClosed) | None => OnError::FailClosed,
                    },
                    timeout,
                    memory_limit: (memory_mb as usize) * 1024 * 1024,
                    pool_size,
                    max_instances,
                    fetch,
                },
            );
        }
        out
    }

    /// Plugins may never fetch from the admin listener, nor from a link-local target unless its
    /// upstream sets `allow_link_local`. Literal addresses are refused here; every fetch checks
    /// the resolved address again (`proxy::fetch`), which also covers host names.
    fn fetch_targets(
        &mut self,
        plugins: &BTreeMap<String, PluginSpec>,
        upstreams: &BTreeMap<String, Upstream>,
        admin: Option<&Admin>,
    ) {
        for (name, spec) in plugins {
            for (j, upstream) in spec.fetch.iter().enumerate() {
                let Some(u) = upstreams.get(upstream) else {
                    continue;
                };
                for target in &u.targets {
                    let Ok(addr) = target.parse::<SocketAddr>() else {
                        continue;
                    };
                    let ip = addr.ip().to_canonical();
                    let is_admin = admin.is_some_and(|a| {
                        a.addr.port() != 0
                            && a.addr.port() == addr.port()
                            && (ip == a.addr.ip().to_canonical() || ip.is_unspecified())
                    });
                    let link_local = match ip {
                        IpAddr::V4(v4) => v4.is_link_local(),
                        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
                    };
                    let why = if is_admin {
                        format!(
                            "upstream `{upstream}` targets the admin listener ({target}); plugins \
                             may not fetch from it"
                        )
                    } else if link_local && !u.allow_link_local {
                        format!(
                            "upstream `{upstream}` targets the link-local address {target}; set \
                             `allow_link_local = true` on upstreams.{upstream} to let plugins \
                             fetch from it"
                        )
                    } else {
                        continue;
                    };
                    self.issues.push(format!("plugins.{name}.fetch[{j}]"), why);
                }
            }
        }
    }

    /// `module` is a built-in name (`headers`, `ip-filter`) found in the plugin directory, or a
    /// path to a `.wasm` file relative to the config file.
    fn module_path(&self, module: &str, plugin_dir: &Path) -> Result<PathBuf, String> {
        let is_path = module.contains('/') || module.ends_with(".wasm");
        let file = if is_path {
            self.base.join(module)
        } else if !module.is_empty()
            && module
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            plugin_dir.join(format!("{}.wasm", module.replace('-', "_")))
        } else {
            return Err(format!(
                "`{module}` is neither a built-in plugin name nor a path to a .wasm file"
            ));
        };
        if file.is_file() {
            Ok(file)
        } else if is_path {
            Err(format!("module file `{}` does not exist", file.display()))
        } else {
            Err(format!(
                "built-in plugin `{module}` not found at `{}` (build the plugins with scripts/build-plugins.sh)",
                file.display()
            ))
        }
    }

    fn routes(
        &mut self,
        value: Option<toml::Value>,
        upstreams: &BTreeMap<String, Upstream>,
        plugins: &BTreeMap<String, PluginSpec>,
    ) -> Vec<Route> {
        let Some(value) = value else {
            return Vec::new();
        };
        let toml::Value::Array(items) = value else {
            self.issues
                .push("routes", "must be an array of tables ([[routes]])");
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut names = HashSet::new();
        let mut seen_matches = BTreeSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("routes[{i}]");
            let Some(raw) = self.de::<RawRoute>(&path, item) else {
                continue;
            };
            let mut ok = true;
            if !names.insert(raw.name.clone()) {
                self.issues.push(
                    format!("{path}.name"),
                    format!("duplicate route name `{}`", raw.name),
                );
                ok = false;
            }
            let path_match = match (raw.path, raw.path_prefix) {
                (Some(p), None) => check_route_path(self.issues, &format!("{path}.path"), &p)
                    .then_some(PathMatch::Exact(p)),
                (None, Some(p)) => {
                    check_route_path(self.issues, &format!("{path}.path_prefix"), &p)
                        .then(|| PathMatch::Prefix(trim_prefix(p)))
                }
                (Some(_), Some(_)) => {
                    self.issues.push(
                        path.clone(),
                        "set either `path` (exact) or `path_prefix`, not both",
                    );
                    None
                }
                (None, None) => {
                    self.issues
                        .push(path.clone(), "needs `path` (exact match) or `path_prefix`");
                    None
                }
            };
            let mut hosts = Vec::new();
            for (j, h) in raw.hosts.unwrap_or_default().into_iter().enumerate() {
                let host = h.to_ascii_lowercase();
                let bare = host.strip_prefix("*.").unwrap_or(&host);
                let valid = !bare.is_empty()
                    && bare.split('.').all(|l| {
                        !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if valid {
                    hosts.push(host);
                } else {
                    self.issues.push(
                        format!("{path}.hosts[{j}]"),
                        format!("`{h}` is not a host name (use `example.com` or `*.example.com`, no port)"),
                    );
                    ok = false;
                }
            }
            let mut methods = Vec::new();
            for (j, m) in raw.methods.unwrap_or_default().into_iter().enumerate() {
                match Method::from_bytes(m.as_bytes()) {
                    Ok(method) if m.bytes().all(|b| b.is_ascii_uppercase()) => methods.push(method),
                    _ => {
                        self.issues.push(
                            format!("{path}.methods[{j}]"),
                            format!("`{m}` is not an upper-case HTTP method"),
                        );
                        ok = false;
                    }
                }
            }
            if !upstreams.contains_key(&raw.upstream) {
                self.issues.push(
                    format!("{path}.upstream"),
                    format!(
                        "unknown upstream `{}`{}",
                        raw.upstream,
                        known(upstreams.keys())
                    ),
                );
                ok = false;
            }
            for (j, p) in raw.chain.iter().enumerate() {
                if !plugins.contains_key(p) {
                    self.issues.push(
                        format!("{path}.chain[{j}]"),
                        format!("unknown plugin `{p}`{}", known(plugins.keys())),
                    );
                    ok = false;
                }
            }
            if let Some(pm) = &path_match {
                let mut sorted_hosts = hosts.clone();
                sorted_hosts.sort();
                let mut sorted_methods: Vec<String> =
                    methods.iter().map(|m| m.to_string()).collect();
                sorted_methods.sort();
                let key = format!("{sorted_hosts:?} {pm:?} {sorted_methods:?}");
                if !seen_matches.insert(key) {
                    self.issues.push(
                        path.clone(),
                        "matches exactly the same hosts, path and methods as an earlier route",
                    );
                    ok = false;
                }
            }
            if let (true, Some(path_match)) = (ok, path_match) {
                out.push(Route {
                    name: Arc::from(raw.name.as_str()),
                    hosts,
                    path: path_match,
                    methods,
                    upstream: raw.upstream,
                    chain: raw.chain,
                    case_insensitive: raw.case_insensitive,
                });
            }
        }
        out
    }
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        " (none are defined)".to_owned()
    } else {
        format!(" (defined: {})", names.join(", "))
    }
}

fn check_name(issues: &mut Issues, path: &str, name: &str) {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        issues.push(path, "names may only use letters, digits, `-` and `_`");
    }
}

fn check_target(target: &str) -> Result<(), String> {
    if target.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let bad = || format!("`{target}` is not a `host:port` target");
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => Err(bad()),
    }
}

/// A route path must already be in normal form, since request paths are normalised before
/// matching: a route written any other way could never match.
fn check_route_path(issues: &mut Issues, path: &str, p: &str) -> bool {
    // The same rule as request paths (`crate::path`): a route path must already be its result.
    let problem = match crate::path::normalize_path(p) {
        _ if p.contains('?') => Some("a route path has no query".to_owned()),
        // Routing reads request paths without `;` parameters (crate::proxy::routing).
        _ if p.contains(';') || p.to_ascii_uppercase().contains("%3B") => {
            Some("routing ignores `;` parameters, so a route path cannot have one".to_owned())
        }
        Ok(normal) if normal == p => None,
        Ok(normal) => Some(format!(
            "requests are normalised first, so write `{normal}`"
        )),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = &problem {
        issues.push(path, format!("`{p}` is not a normalised path: {why}"));
    }
    problem.is_none()
}

/// `/api/` and `/api` are the same prefix (matching is at `/` boundaries).
fn trim_prefix(p: String) -> String {
    if p.len() > 1 && p.ends_with('/') {
        p[..p.len() - 1].to_owned()
    } else {
        p
    }
}
