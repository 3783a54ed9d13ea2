//! `[limits]`: what every request may carry, and the caps on what plugins hand the host.

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
    pub plugins: crate::config::PluginLimits,
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
            plugins: crate::config::PluginLimits::default(),
            max_buffered_bytes: 256 * 1024 * 1024,
        }
    }
}
