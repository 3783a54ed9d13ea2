//! `[limits]`: request size limits, the global buffering budget and the caps on what plugins
//! hand the host.

use super::Validator;
use crate::config::PluginLimits;
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
        let max_header_count = self.positive_limit(
            "max_header_count",
            raw.max_header_count.map(|v| v as u64),
            defaults.max_header_count as u64,
        ) as usize;
        let max_header_bytes = self.positive_limit(
            "max_header_bytes",
            raw.max_header_bytes.map(|v| v as u64),
            defaults.max_header_bytes as u64,
        ) as usize;
        let plugins =
            self.plugin_limits(&raw, max_header_count, max_header_bytes, defaults.plugins);
        let mut limits = Limits {
            max_header_count,
            max_header_bytes,
            plugins,
            max_body_bytes: self.positive_limit(
                "max_body_bytes",
                raw.max_body_bytes,
                defaults.max_body_bytes,
            ),
            max_response_body_bytes: self.positive_limit(
                "max_response_body_bytes",
                raw.max_response_body_bytes,
                defaults.max_response_body_bytes,
            ),
            max_buffered_bytes: self.positive_limit(
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

    /// `limits.NAME`, which must be greater than 0; `default` when unset or 0.
    fn positive_limit(&mut self, name: &str, v: Option<u64>, default: u64) -> u64 {
        match v {
            Some(0) => {
                self.issues
                    .push(format!("limits.{name}"), "must be greater than 0");
                default
            }
            Some(v) => v,
            None => default,
        }
    }

    /// [`Self::positive_limit`] as a size in memory.
    fn size_limit(&mut self, name: &str, v: Option<u64>, default: usize) -> usize {
        usize::try_from(self.positive_limit(name, v, default as u64)).unwrap_or(usize::MAX)
    }

    /// The `plugin_*` and `state_*` caps, with the header limits the request already has.
    fn plugin_limits(
        &mut self,
        raw: &RawLimits,
        max_header_count: usize,
        max_header_bytes: usize,
        p: PluginLimits,
    ) -> PluginLimits {
        PluginLimits {
            max_header_count,
            max_header_bytes,
            max_context_keys: self.size_limit(
                "plugin_context_keys",
                raw.plugin_context_keys,
                p.max_context_keys,
            ),
            max_context_bytes: self.size_limit(
                "plugin_context_bytes",
                raw.plugin_context_bytes,
                p.max_context_bytes,
            ),
            max_log_bytes: self.size_limit(
                "plugin_log_bytes",
                raw.plugin_log_bytes,
                p.max_log_bytes,
            ),
            max_metric_series: self.size_limit(
                "plugin_metric_series",
                raw.plugin_metric_series,
                p.max_metric_series,
            ),
            max_state_key_bytes: self.size_limit(
                "plugin_state_key_bytes",
                raw.plugin_state_key_bytes,
                p.max_state_key_bytes,
            ),
            max_state_value_bytes: self.size_limit(
                "plugin_state_value_bytes",
                raw.plugin_state_value_bytes,
                p.max_state_value_bytes,
            ),
            max_fetch_requests: u32::try_from(self.size_limit(
                "plugin_fetch_requests",
                raw.plugin_fetch_requests,
                p.max_fetch_requests as usize,
            ))
            .unwrap_or(u32::MAX),
            max_fetch_bytes: self.size_limit(
                "plugin_fetch_bytes",
                raw.plugin_fetch_bytes,
                p.max_fetch_bytes as usize,
            ) as u64,
            max_defers: u32::try_from(self.size_limit(
                "plugin_defers",
                raw.plugin_defers,
                p.max_defers as usize,
            ))
            .unwrap_or(u32::MAX),
            max_call_time: std::time::Duration::from_millis(self.size_limit(
                "plugin_call_time_ms",
                raw.plugin_call_time_ms,
                p.max_call_time.as_millis() as usize,
            ) as u64),
            state_max_entries: self.size_limit(
                "state_max_entries",
                raw.state_max_entries,
                p.state_max_entries,
            ),
            state_max_bytes: self.size_limit(
                "state_max_bytes",
                raw.state_max_bytes,
                p.state_max_bytes,
            ),
        }
    }
}
