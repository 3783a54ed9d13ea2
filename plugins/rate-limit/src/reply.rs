//! What the client sees: the `RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers, the
//! separate-field form most clients read), `Retry-After`, and the JSON refusals. Also the
//! compact form in which a request's quota waits in the context for the response phase.

use tollgate_sdk::Action;
use tollgate_sdk::text::push_u64;

use crate::config::{Algorithm, Settings};
use crate::limiter::Quota;

/// Whole seconds, rounded up (a client that waits that long is never early).
pub fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// `RateLimit-Policy`, e.g. `100;w=60` or `5;w=1;burst=1`; `None` when the period is not a
/// whole number of seconds (`w` is in seconds).
pub fn policy(settings: &Settings) -> Option<String> {
    if !settings.period_ms.is_multiple_of(1000) {
        return None;
    }
    let mut p = String::with_capacity(40);
    push_u64(&mut p, settings.limit);
    p.push_str(";w=");
    push_u64(&mut p, settings.period_ms / 1000);
    if let Algorithm::TokenBucket { capacity, .. } = settings.algorithm
        && u64::from(capacity) != settings.limit
    {
        p.push_str(";burst=");
        push_u64(&mut p, u64::from(capacity));
    }
    Some(p)
}

/// The `RateLimit-*` headers for a quota.
pub fn quota_headers(settings: &Settings, quota: &Quota) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("ratelimit-limit", quota.limit.to_string()),
        ("ratelimit-remaining", quota.remaining.to_string()),
        ("ratelimit-reset", seconds(quota.reset_ms).to_string()),
    ];
    if let Some(p) = policy(settings) {
        headers.push(("ratelimit-policy", p));
    }
    headers
}

/// A refusal: `status` with `Retry-After`, the quota headers (when enabled) and a JSON body
/// `{"error", "message", "retry_after_ms"}`.
pub fn refuse(
    settings: &Settings,
    status: u16,
    error: &str,
    message: &str,
    quota: &Quota,
    retry_after_ms: u64,
) -> Action {
    let mut action = Action::json(
        status,
        &serde_json::json!({
            "error": error,
            "message": message,
            "retry_after_ms": retry_after_ms,
        }),
    )
    .header("retry-after", seconds(retry_after_ms).to_string());
    if settings.headers {
        for (name, value) in quota_headers(settings, quota) {
            action = action.header(name, value);
        }
    }
    action
}

/// `"100 per 1m"`-style description of the limit for messages.
pub fn describe(settings: &Settings) -> String {
    let p = settings.period_ms;
    let period = match p {
        _ if p.is_multiple_of(86_400_000) => format!("{}d", p / 86_400_000),
        _ if p.is_multiple_of(3_600_000) => format!("{}h", p / 3_600_000),
        _ if p.is_multiple_of(60_000) => format!("{}m", p / 60_000),
        _ if p.is_multiple_of(1000) => format!("{}s", p / 1000),
        _ => format!("{p}ms"),
    };
    format!("{} requests per {period}", settings.limit)
}

/// A quota stashed in the request's context between the request and response phases: the
/// reset is stored as an absolute time, so the response (which comes later) counts down from
/// the right moment. Format: `limit remaining reset_at_ms`.
pub fn stash(quota: &Quota, now_ms: u64) -> String {
    let mut text = String::with_capacity(62);
    push_u64(&mut text, quota.limit);
    text.push(' ');
    push_u64(&mut text, quota.remaining);
    text.push(' ');
    push_u64(&mut text, now_ms.saturating_add(quota.reset_ms));
    text
}

/// Read a stashed quota back at `now_ms`; `None` when it is not in the stashed format.
pub fn unstash(text: &str, now_ms: u64) -> Option<Quota> {
    let mut parts = text.split(' ').map(str::parse::<u64>);
    let (Some(Ok(limit)), Some(Ok(remaining)), Some(Ok(reset_at)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(Quota {
        limit,
        remaining,
        reset_ms: reset_at.saturating_sub(now_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawConfig, validate};

    fn settings(json: &str) -> Settings {
        let raw: RawConfig = match serde_json::from_str(json) {
            Ok(raw) => raw,
            Err(e) => panic!("{e}"),
        };
        match validate(raw) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn rounding_and_policy() {
        assert_eq!(seconds(0), 0);
        assert_eq!(seconds(1), 1);
        assert_eq!(seconds(1000), 1);
        assert_eq!(seconds(1001), 2);
        assert_eq!(
            policy(&settings(r#"{"limit": 100, "period": "1m"}"#)).as_deref(),
            Some("100;w=60")
        );
        assert_eq!(
            policy(&settings(r#"{"limit": 5, "period": "1s", "burst": 1}"#)).as_deref(),
            Some("5;w=1;burst=1")
        );
        assert_eq!(
            policy(&settings(r#"{"limit": 5, "period": "500ms"}"#)),
            None
        );
        assert_eq!(
            describe(&settings(r#"{"limit": 100, "period": "hour"}"#)),
            "100 requests per 1h"
        );
    }

    #[test]
    fn refusal_carries_headers_and_body() {
        let s = settings(r#"{"limit": 100, "period": "1h"}"#);
        let quota = Quota {
            limit: 100,
            remaining: 0,
            reset_ms: 3_600_000,
        };
        let Action::Respond {
            status,
            headers,
            body,
        } = refuse(&s, 429, "rate_limited", "slow down", &quota, 35_999)
        else {
            panic!("a response")
        };
        assert_eq!(status, 429);
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(find("retry-after"), Some("36"));
        assert_eq!(find("ratelimit-limit"), Some("100"));
        assert_eq!(find("ratelimit-remaining"), Some("0"));
        assert_eq!(find("ratelimit-reset"), Some("3600"));
        assert_eq!(find("ratelimit-policy"), Some("100;w=3600"));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(body["error"], "rate_limited");
        assert_eq!(body["retry_after_ms"], 35_999);
    }

    #[test]
    fn stash_round_trip() {
        let q = Quota {
            limit: 10,
            remaining: 3,
            reset_ms: 1500,
        };
        assert_eq!(
            unstash(&stash(&q, 1000), 2000),
            Some(Quota { reset_ms: 500, ..q })
        );
        assert_eq!(unstash(&stash(&q, 1000), 9000).map(|q| q.reset_ms), Some(0));
        assert_eq!(unstash("1 2", 0), None);
        assert_eq!(unstash("1 2 3 4", 0), None);
        assert_eq!(unstash("a b c", 0), None);
    }
}
