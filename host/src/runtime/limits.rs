//! Caps on what a plugin hands the host: headers it sets or answers with, per-request context,
//! log lines, metric series, state keys and values, fetches, defers and wall-clock time. Past a
//! cap the plugin gets an error (or its call fails), `tollgate_plugin_limit_exceeded_total`
//! counts it, and the host never panics. `docs/limits.md` lists each cap and its default.

use http::HeaderMap;

pub use crate::config::PluginLimits;

/// Which cap was hit, for the `limit` label and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Headers,
    Context,
    Log,
    MetricSeries,
    StateKey,
    StateValue,
    Fetch,
    Defers,
    CallTime,
    Status,
}

impl Limit {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Limit::Headers => "headers",
            Limit::Context => "context",
            Limit::Log => "log",
            Limit::MetricSeries => "metric_series",
            Limit::StateKey => "state_key",
            Limit::StateValue => "state_value",
            Limit::Fetch => "fetch",
            Limit::Defers => "defers",
            Limit::CallTime => "call_time",
            Limit::Status => "status",
        }
    }
}

/// Count a cap hit by `plugin` (rare: labels are built here, not on the hot path).
pub(crate) fn exceeded(plugin: &str, limit: Limit) {
    metrics::counter!(
        "tollgate_plugin_limit_exceeded_total",
        "plugin" => plugin.to_owned(),
        "limit" => limit.as_str(),
    )
    .increment(1);
}

/// Bytes of header names and values, as `[limits] max_header_bytes` counts them.
pub(crate) fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum()
}

/// Whether `headers` may take `added` more values and `bytes` more bytes, or why not.
pub(crate) fn check_headers(
    limits: &PluginLimits,
    headers: &HeaderMap,
    added: usize,
    bytes: usize,
) -> Result<(), String> {
    if headers.len().saturating_add(added) > limits.max_header_count {
        return Err(format!(
            "too many headers: at most {} are allowed",
            limits.max_header_count
        ));
    }
    if header_bytes(headers).saturating_add(bytes) > limits.max_header_bytes {
        return Err(format!(
            "headers too large: at most {} bytes are allowed",
            limits.max_header_bytes
        ));
    }
    Ok(())
}

/// Cut `message` to at most `max` bytes at a character boundary; true when it was cut.
pub(crate) fn truncate(message: &mut String, max: usize) -> bool {
    if message.len() <= max {
        return false;
    }
    let mut end = max;
    while end > 0 && !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_utf8() {
        let mut s = "aé".repeat(4);
        assert!(truncate(&mut s, 4));
        assert_eq!(s, "aéa");
        let mut short = "ok".to_owned();
        assert!(!truncate(&mut short, 4));
    }
}
