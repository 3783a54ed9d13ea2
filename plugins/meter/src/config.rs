//! The `meter` config (raw serde type) and its validation.

use serde::Deserialize;

/// The `[plugins.NAME.config]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    retention_days: Option<u64>,
    metrics: Option<bool>,
    consumer_label: Option<bool>,
}

/// The validated config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long an hourly bucket is kept after its hour ends, in milliseconds.
    pub retention_ms: u64,
    /// Export Prometheus counters as well as state counters.
    pub metrics: bool,
    /// Put the consumer in the metrics' labels (one series per consumer and route).
    pub consumer_label: bool,
}

/// Default retention: a month of 31 days plus a few days to bill it.
pub const DEFAULT_RETENTION_DAYS: u64 = 35;
const MAX_RETENTION_DAYS: u64 = 3660;

/// Validate a parsed config.
pub fn validate(raw: RawConfig) -> Result<Settings, String> {
    let days = raw.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(format!(
            "retention_days: {days} is not in 1..={MAX_RETENTION_DAYS}"
        ));
    }
    Ok(Settings {
        retention_ms: days * 86_400_000,
        metrics: raw.metrics.unwrap_or(true),
        consumer_label: raw.consumer_label.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Settings, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string())?;
        validate(raw)
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(
            parse(serde_json::json!({})),
            Ok(Settings {
                retention_ms: 35 * 86_400_000,
                metrics: true,
                consumer_label: true
            })
        );
        let s = parse(serde_json::json!({"retention_days": 2, "consumer_label": false}))
            .expect("valid");
        assert_eq!(s.retention_ms, 2 * 86_400_000);
        assert!(!s.consumer_label);
        let err = parse(serde_json::json!({"retention_days": 0})).expect_err("must fail");
        assert!(
            err.contains("retention_days: 0 is not in 1..=3660"),
            "{err}"
        );
        let err = parse(serde_json::json!({"retention": 3})).expect_err("must fail");
        assert!(err.contains("unknown field `retention`"), "{err}");
    }
}
