//! The `rate-limit` config as written in `gateway.toml` (raw serde types), validated into
//! [`Settings`]. Every problem is collected with its config path before failing.

use serde::Deserialize;

use crate::key::{KeyPart, Missing};

/// The host's cap on the total time one request may spend deferred in a phase; a queue that
/// waits longer would be answered 503 `deferred_too_long` by the host instead of by us.
pub const HOST_MAX_DEFER_MS: u64 = 30_000;

/// The `[plugins.NAME.config]` table. Optional fields are `Option`s so that defaults and
/// cross-field rules live in [`validate`], next to their error messages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    limit: Option<u64>,
    period: Option<String>,
    burst: Option<u64>,
    algorithm: Option<String>,
    key: Option<Vec<serde_json::Value>>,
    missing: Option<String>,
    on_limit: Option<String>,
    max_wait_ms: Option<u64>,
    max_queue: Option<u64>,
    headers: Option<bool>,
    ipv6_prefix: Option<u64>,
}

/// How requests are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    /// GCRA token bucket through the host's atomic `state.take`.
    TokenBucket {
        /// Bucket size: the most requests let through at once.
        capacity: u32,
        /// Tokens added per second (`limit / period`).
        refill_per_second: f64,
    },
    /// Weighted count of the current and previous fixed windows (`state.incr`).
    SlidingWindow,
}

/// What happens to a request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLimit {
    /// Answer 429 at once.
    Reject,
    /// Reserve a later slot and defer the request until then (token bucket only).
    Queue {
        /// Longest a request may wait; beyond it, 429.
        max_wait_ms: u64,
        /// Most requests waiting per key; beyond it, 503 `queue_full`.
        max_queue: Option<u64>,
    },
}

/// A validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Requests per period.
    pub limit: u64,
    /// The period, in milliseconds.
    pub period_ms: u64,
    /// The algorithm and its parameters.
    pub algorithm: Algorithm,
    /// What the limit is counted by.
    pub key: Vec<KeyPart>,
    /// What to do when a key part is absent.
    pub missing: Missing,
    /// Reject or queue.
    pub on_limit: OnLimit,
    /// Send `RateLimit-*` headers on successful responses too.
    pub headers: bool,
    /// IPv6 clients are counted per prefix of this many bits (`"ip"` key parts).
    pub ipv6_prefix: u8,
}

/// The token bucket's refill bounds, as the host's `take` accepts them.
const MIN_REFILL_PER_SECOND: f64 = 1e-6;
const MAX_REFILL_PER_SECOND: f64 = 1e9;

/// Validate a parsed config.
pub fn validate(raw: RawConfig) -> Result<Settings, String> {
    let mut errors: Vec<String> = Vec::new();

    let limit = match raw.limit {
        None => {
            errors.push("limit: missing (requests allowed per `period`, e.g. 100)".into());
            None
        }
        Some(0) => {
            errors.push("limit: must be at least 1".into());
            None
        }
        Some(n) => Some(n),
    };
    let period_ms = match raw.period.as_deref() {
        None => {
            errors.push(
                "period: missing (e.g. \"1s\", \"1m\", \"1h\", \"500ms\" or \"minute\")".into(),
            );
            None
        }
        Some(text) => parse_period(text)
            .map_err(|e| errors.push(format!("period: {e}")))
            .ok(),
    };

    let algorithm = match (raw.algorithm.as_deref(), limit, period_ms) {
        (None | Some("token-bucket"), Some(limit), Some(period_ms)) => {
            token_bucket(limit, period_ms, raw.burst, &mut errors)
        }
        (None | Some("token-bucket"), _, _) => None,
        (Some("sliding-window"), _, _) => {
            if raw.burst.is_some() {
                errors.push(
                    "burst: only for algorithm = \"token-bucket\" (a sliding window admits \
                     `limit` per window)"
                        .into(),
                );
            }
            Some(Algorithm::SlidingWindow)
        }
        (Some(other), _, _) => {
            errors.push(format!(
                "algorithm: {other:?} is not \"token-bucket\" or \"sliding-window\""
            ));
            None
        }
    };

    let key = match &raw.key {
        None => vec![KeyPart::Ip],
        Some(parts) if parts.is_empty() => {
            errors.push(
                "key: empty; name what the limit is counted by (e.g. [\"consumer\"] or [\"ip\"])"
                    .into(),
            );
            Vec::new()
        }
        Some(parts) => parts
            .iter()
            .enumerate()
            .filter_map(|(i, part)| {
                KeyPart::parse(part)
                    .map_err(|e| errors.push(format!("key[{i}]: {e}")))
                    .ok()
            })
            .collect(),
    };

    let missing = match raw.missing.as_deref() {
        None | Some("deny") => Missing::Deny,
        Some("skip") => Missing::Skip,
        Some("use-ip") => Missing::UseIp,
        Some(other) => {
            errors.push(format!(
                "missing: {other:?} is not \"deny\", \"skip\" or \"use-ip\""
            ));
            Missing::Deny
        }
    };

    let on_limit = match raw.on_limit.as_deref() {
        None | Some("reject") => {
            for (set, name) in [
                (raw.max_wait_ms.is_some(), "max_wait_ms"),
                (raw.max_queue.is_some(), "max_queue"),
            ] {
                if set {
                    errors.push(format!("{name}: only with on_limit = \"queue\""));
                }
            }
            Some(OnLimit::Reject)
        }
        Some("queue") => queue(&raw, algorithm, &mut errors),
        Some(other) => {
            errors.push(format!(
                "on_limit: {other:?} is not \"reject\" or \"queue\""
            ));
            None
        }
    };

    let ipv6_prefix = match raw.ipv6_prefix {
        None => crate::key::DEFAULT_IPV6_PREFIX,
        Some(bits @ 1..=128) => u8::try_from(bits).unwrap_or(128),
        Some(other) => {
            errors.push(format!(
                "ipv6_prefix: {other} is not a prefix length from 1 to 128"
            ));
            crate::key::DEFAULT_IPV6_PREFIX
        }
    };

    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    match (limit, period_ms, algorithm, on_limit) {
        (Some(limit), Some(period_ms), Some(algorithm), Some(on_limit)) => Ok(Settings {
            limit,
            period_ms,
            algorithm,
            key,
            missing,
            on_limit,
            headers: raw.headers.unwrap_or(true),
            ipv6_prefix,
        }),
        // Every `None` above pushed an error.
        _ => Err("invalid config".into()),
    }
}

fn token_bucket(
    limit: u64,
    period_ms: u64,
    burst: Option<u64>,
    errors: &mut Vec<String>,
) -> Option<Algorithm> {
    let capacity = burst.unwrap_or(limit);
    let capacity = match u32::try_from(capacity) {
        Ok(0) => {
            errors.push("burst: must be at least 1".into());
            return None;
        }
        Ok(c) => c,
        Err(_) => {
            let what = if burst.is_some() { "burst" } else { "limit" };
            errors.push(format!(
                "{what}: {capacity} is more than a token bucket holds ({}); set a smaller `burst`",
                u32::MAX
            ));
            return None;
        }
    };
    let refill_per_second = limit as f64 * 1000.0 / period_ms as f64;
    if !(MIN_REFILL_PER_SECOND..=MAX_REFILL_PER_SECOND).contains(&refill_per_second) {
        errors.push(format!(
            "limit/period: {limit} per {period_ms} ms is {refill_per_second} per second; the \
             token bucket supports {MIN_REFILL_PER_SECOND} to {MAX_REFILL_PER_SECOND}"
        ));
        return None;
    }
    Some(Algorithm::TokenBucket {
        capacity,
        refill_per_second,
    })
}

fn queue(
    raw: &RawConfig,
    algorithm: Option<Algorithm>,
    errors: &mut Vec<String>,
) -> Option<OnLimit> {
    if algorithm == Some(Algorithm::SlidingWindow) {
        errors.push(
            "on_limit: \"queue\" needs algorithm = \"token-bucket\" (only a token bucket can \
             reserve a later slot, so waiting requests are served in arrival order)"
                .into(),
        );
        return None;
    }
    let max_wait_ms = raw.max_wait_ms.unwrap_or(DEFAULT_MAX_WAIT_MS);
    if max_wait_ms == 0 || max_wait_ms > HOST_MAX_DEFER_MS {
        errors.push(format!(
            "max_wait_ms: {max_wait_ms} must be between 1 and {HOST_MAX_DEFER_MS} (the gateway \
             answers 503 to a request deferred for longer)"
        ));
        return None;
    }
    if raw.max_queue == Some(0) {
        errors.push("max_queue: 0 queues nothing; use on_limit = \"reject\" or at least 1".into());
        return None;
    }
    Some(OnLimit::Queue {
        max_wait_ms,
        max_queue: raw.max_queue,
    })
}

/// How long a queued request may wait when `max_wait_ms` is not set.
pub const DEFAULT_MAX_WAIT_MS: u64 = 5_000;

/// `"500ms"`, `"1s"`, `"10s"`, `"1m"`, `"1h"`, `"1d"`, or `"second"`, `"minute"`, `"hour"`,
/// `"day"`, in milliseconds.
pub fn parse_period(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let named = match t {
        "second" => Some(1_000),
        "minute" => Some(60_000),
        "hour" => Some(3_600_000),
        "day" => Some(86_400_000),
        _ => None,
    };
    if let Some(ms) = named {
        return Ok(ms);
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let scale: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?} is not a period (a whole number with ms, s, m, h or d, e.g. \"1m\"; \
                 or \"second\", \"minute\", \"hour\", \"day\")"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} has no number before its unit"))?;
    match n.checked_mul(scale) {
        Some(0) => Err(format!("{text:?} is zero")),
        Some(ms) if ms <= 366 * 86_400_000 => Ok(ms),
        _ => Err(format!("{text:?} is longer than a year")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, String> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        validate(raw)
    }

    fn ok(json: &str) -> Settings {
        match settings(json) {
            Ok(s) => s,
            Err(e) => panic!("{json}: {e}"),
        }
    }

    fn err(json: &str) -> String {
        match settings(json) {
            Ok(s) => panic!("{json} was accepted: {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn periods() {
        assert_eq!(parse_period("500ms"), Ok(500));
        assert_eq!(parse_period("1s"), Ok(1_000));
        assert_eq!(parse_period("10s"), Ok(10_000));
        assert_eq!(parse_period("1m"), Ok(60_000));
        assert_eq!(parse_period("1h"), Ok(3_600_000));
        assert_eq!(parse_period("1d"), Ok(86_400_000));
        assert_eq!(parse_period("minute"), Ok(60_000));
        for bad in [
            "",
            "1",
            "m",
            "1.5s",
            "-1s",
            "0s",
            "1 min",
            "400d",
            "99999999999999999999s",
        ] {
            assert!(parse_period(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults() {
        let s = ok(r#"{"limit": 100, "period": "1m"}"#);
        assert_eq!(s.limit, 100);
        assert_eq!(s.period_ms, 60_000);
        match s.algorithm {
            Algorithm::TokenBucket {
                capacity,
                refill_per_second,
            } => {
                assert_eq!(capacity, 100);
                assert!((refill_per_second - 100.0 / 60.0).abs() < 1e-9);
            }
            Algorithm::SlidingWindow => panic!("default is token-bucket"),
        }
        assert_eq!(s.key, vec![KeyPart::Ip]);
        assert_eq!(s.missing, Missing::Deny);
        assert_eq!(s.on_limit, OnLimit::Reject);
        assert!(s.headers);
        assert_eq!(s.ipv6_prefix, 64);
    }

    #[test]
    fn ipv6_prefix_is_a_prefix_length() {
        let s = ok(r#"{"limit": 1, "period": "1s", "ipv6_prefix": 48}"#);
        assert_eq!(s.ipv6_prefix, 48);
        assert_eq!(
            ok(r#"{"limit": 1, "period": "1s", "ipv6_prefix": 128}"#).ipv6_prefix,
            128
        );
        for bad in ["0", "129"] {
            let e = err(&format!(
                r#"{{"limit": 1, "period": "1s", "ipv6_prefix": {bad}}}"#
            ));
            assert!(e.contains("ipv6_prefix:"), "{e}");
        }
    }

    #[test]
    fn queue_mode() {
        let s = ok(
            r#"{"limit": 5, "period": "1s", "burst": 1, "on_limit": "queue",
                       "max_queue": 3, "key": ["consumer", {"header": "X-Api-Key"}, "route"],
                       "missing": "use-ip"}"#,
        );
        assert_eq!(
            s.on_limit,
            OnLimit::Queue {
                max_wait_ms: DEFAULT_MAX_WAIT_MS,
                max_queue: Some(3)
            }
        );
        assert_eq!(
            s.key,
            vec![
                KeyPart::Consumer,
                KeyPart::Header("x-api-key".into()),
                KeyPart::Route
            ]
        );
        assert_eq!(s.missing, Missing::UseIp);
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let e = err(
            r#"{"limit": 0, "period": "soon", "key": ["who", {"header": ""}],
                        "missing": "maybe", "on_limit": "drop"}"#,
        );
        for part in [
            "limit: must be at least 1",
            "period: \"soon\"",
            "key[0]:",
            "key[1]:",
            "missing: \"maybe\"",
            "on_limit: \"drop\"",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
        assert!(err("{}").contains("limit: missing"));
        assert!(err(r#"{"limit": 1, "period": "1s", "bogus": 1}"#).contains("bogus"));
    }

    #[test]
    fn cross_field_rules() {
        let e = err(r#"{"limit": 5, "period": "1s", "algorithm": "sliding-window", "burst": 2}"#);
        assert!(e.contains("burst: only for"), "{e}");
        let e = err(
            r#"{"limit": 5, "period": "1s", "algorithm": "sliding-window", "on_limit": "queue"}"#,
        );
        assert!(e.contains("needs algorithm = \"token-bucket\""), "{e}");
        let e = err(r#"{"limit": 5, "period": "1s", "max_queue": 3}"#);
        assert!(e.contains("max_queue: only with"), "{e}");
        let e = err(r#"{"limit": 5, "period": "1s", "on_limit": "queue", "max_wait_ms": 60000}"#);
        assert!(e.contains("max_wait_ms: 60000"), "{e}");
        let e = err(r#"{"limit": 5, "period": "1s", "burst": 0}"#);
        assert!(e.contains("burst: must be at least 1"), "{e}");
        let e = err(r#"{"limit": 5000000000, "period": "1d"}"#);
        assert!(e.contains("set a smaller `burst`"), "{e}");
        let e = err(r#"{"limit": 1, "period": "1d", "key": []}"#);
        assert!(e.contains("key: empty"), "{e}");
    }
}
