//! `[limits]` caps on what plugins hand the host. The runtime enforces them
//! (`runtime::limits`); `docs/limits.md` lists each with its default and what happens past it.

use std::time::Duration;

/// Caps on what plugins hand the host, from `[limits]` (the `plugin_*` and `state_*` keys;
/// header caps follow `max_header_count` / `max_header_bytes`). Read when the gateway starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    /// Most header values a request or response may have after a plugin adds one
    /// (`[limits] max_header_count`).
    pub max_header_count: usize,
    /// Most bytes of header names and values a request or response may have after a plugin
    /// adds one (`[limits] max_header_bytes`).
    pub max_header_bytes: usize,
    /// Most context keys one request may hold.
    pub max_context_keys: usize,
    /// Most bytes of context keys and values one request may hold.
    pub max_context_bytes: usize,
    /// Longest log line a plugin may write; longer ones are cut there.
    pub max_log_bytes: usize,
    /// Most distinct metric series (name + labels) one plugin may create.
    pub max_metric_series: usize,
    /// Longest state key.
    pub max_state_key_bytes: usize,
    /// Longest state value.
    pub max_state_value_bytes: usize,
    /// Most requests a plugin may send with `fetch` in one phase of one request.
    pub max_fetch_requests: u32,
    /// Most bytes (bodies sent and received) of those fetches.
    pub max_fetch_bytes: u64,
    /// Most `defer` answers one phase of one request may get.
    pub max_defers: u32,
    /// Longest wall-clock time of one call, including waits on fetch and state.
    pub max_call_time: Duration,
    /// Most entries the memory state backend holds (all plugins together).
    pub state_max_entries: usize,
    /// Most bytes (keys, values, 64 bytes per entry) the memory state backend holds.
    pub state_max_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            max_header_count: 100,
            max_header_bytes: 16 * 1024,
            max_context_keys: 64,
            max_context_bytes: 64 * 1024,
            max_log_bytes: 4 * 1024,
            max_metric_series: 1000,
            max_state_key_bytes: 1024,
            max_state_value_bytes: 64 * 1024,
            max_fetch_requests: 64,
            max_fetch_bytes: 16 << 20,
            max_defers: 100,
            max_call_time: Duration::from_secs(10),
            state_max_entries: 1_000_000,
            state_max_bytes: 256 << 20,
        }
    }
}
