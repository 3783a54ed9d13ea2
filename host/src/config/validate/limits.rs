//! `[limits]`: request size limits, the global buffering budget and the caps on what plugins
//! hand the host.

use super::Validator;
use crate::config::model::Limits;
use crate::config::raw::RawLimits;

impl Validator<'_> {
    /// `[limits]`: every value greater than 0; unset ones at their defaults.
    pub(super) fn limits(&mut self, value: Option<toml::Value>) -> Limits {
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
}
