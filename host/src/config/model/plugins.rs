//! `[plugins.NAME]`: a plugin instance's module, config, sandbox limits and failure policies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    /// `[plugins.NAME.canary]`: a second version serving a slice of the traffic.
    pub canary: Option<Arc<CanarySpec>>,
    /// Which version of the entry this spec loads (the canary's spec comes from
    /// [`PluginSpec::canary_version`]).
    pub version: PluginVersion,
}

/// The stable version of an entry (its `module`) or its canary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PluginVersion {
    /// `module` and `config` of `[plugins.NAME]`.
    #[default]
    Stable,
    /// `[plugins.NAME.canary]`.
    Canary,
}

impl PluginVersion {
    /// `stable` or `canary`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginVersion::Stable => "stable",
            PluginVersion::Canary => "canary",
        }
    }
}

/// `[plugins.NAME.canary]`: another module (and config) for a share of the traffic, with the
/// entry's limits and failure policies.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySpec {
    /// Resolved path of the canary's component file.
    pub module: PathBuf,
    /// The canary's `config` table as JSON text.
    pub config_json: String,
    /// Share of the traffic in basis points (10 % = 1000 of 10,000 buckets).
    pub basis_points: u32,
    /// What decides which version serves a request.
    pub split: CanarySplit,
    /// When to take the canary out of service by itself.
    pub rollback: Option<RollbackRule>,
}

/// `split`: the key hashed into a bucket, so the same key keeps the same version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanarySplit {
    /// The `consumer` context key (set by an auth plugin earlier in the chain); the client IP
    /// when it is not set.
    Consumer,
    /// The client address.
    ClientIp,
    /// A request header; the client IP when it is absent.
    Header(http::HeaderName),
    /// Each request on its own.
    Request,
}

impl CanarySplit {
    /// As written in the config.
    pub fn describe(&self) -> String {
        match self {
            CanarySplit::Consumer => "consumer".to_owned(),
            CanarySplit::ClientIp => "client_ip".to_owned(),
            CanarySplit::Header(h) => format!("header:{h}"),
            CanarySplit::Request => "request".to_owned(),
        }
    }
}

/// `[plugins.NAME.canary.rollback]`: take the canary out when, over a window with at least
/// `min_requests` canary calls, its failure rate exceeds the stable's by more than
/// `max_error_rate_points` percentage points, or its p99 call time exceeds `max_p99_ratio` times
/// the stable's (compared once each version has 100 calls in the window).
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackRule {
    /// Percentage points (0..=100).
    pub max_error_rate_points: Option<f64>,
    /// A ratio (> 1).
    pub max_p99_ratio: Option<f64>,
    /// Canary calls in the window before the rule judges.
    pub min_requests: u64,
    /// The window's length.
    pub window: Duration,
    /// POSTed a JSON event (off the request path) when the canary is rolled back.
    pub webhook: Option<http::Uri>,
}

impl PluginSpec {
    /// The spec that loads the canary: its module and config, the entry's name, limits and
    /// policies. `None` without a canary.
    pub fn canary_version(&self) -> Option<PluginSpec> {
        let canary = self.canary.as_ref()?;
        Some(PluginSpec {
            module: canary.module.clone(),
            config_json: canary.config_json.clone(),
            canary: None,
            version: PluginVersion::Canary,
            ..self.clone()
        })
    }
}
