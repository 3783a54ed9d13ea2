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
}
