//! Per-consumer usage for `GET /admin/usage`, read back from the hourly buckets that the
//! built-in `meter` plugin writes into the shared state:
//!
//! ```text
//! <meter instance>:usage:<consumer>:<route>:<YYYYMMDDHH>:<field>
//! ```
//!
//! (`plugins/meter/src/keys.rs` writes this layout; consumer and route are escaped there so they
//! contain no `:`). The meter instances read are every plugin in the served config whose module
//! is the built-in `meter` (`meter.wasm`); their counts are summed.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::config::Config;
use crate::runtime::{StateBackend, StateError};

/// The module file name that marks a plugin instance as a meter.
const METER_MODULE: &str = "meter.wasm";

/// The window used when `from` / `to` are not given.
const DEFAULT_WINDOW: Duration = Duration::hours(24);

/// A bad `/admin/usage` query, answered with 400 and this parameter's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct QueryError {
    /// The offending query parameter.
    pub parameter: String,
    /// What is wrong with it.
    pub message: String,
}

impl QueryError {
    fn new(parameter: &str, message: impl Into<String>) -> Self {
        Self {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    /// The JSON body of the 400 answer.
    pub fn to_json(&self) -> serde_json::Value {
        json!({"error": "bad_request", "parameter": self.parameter, "message": self.message})
    }
}

/// A parsed `/admin/usage` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// The consumer (as the auth plugin names it; `anonymous` for unidentified requests).
    pub consumer: String,
    /// Only this route, when given.
    pub route: Option<String>,
    /// Start of the window (its hour bucket is included).
    pub from: OffsetDateTime,
    /// End of the window, exclusive: buckets whose hour starts before it are included.
    pub to: OffsetDateTime,
}

impl UsageQuery {
    /// Parse the query string: `consumer` (required), `route`, `from`, `to` (RFC 3339, any
    /// offset; default the 24 hours before `now`).
    pub fn parse(query: Option<&str>, now: OffsetDateTime) -> Result<Self, QueryError> {
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name);
            if !matches!(name.as_str(), "consumer" | "route" | "from" | "to") {
                return Err(QueryError::new(
                    &name,
                    "unknown parameter (expected consumer, route, from, to)",
                ));
            }
            if params.insert(name.clone(), decode(value)).is_some() {
                return Err(QueryError::new(&name, "given more than once"));
            }
        }
        let consumer = params
            .remove("consumer")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| QueryError::new("consumer", "required"))?;
        let route = params.remove("route").filter(|r| !r.is_empty());
        let time = |name: &str| -> Result<Option<OffsetDateTime>, QueryError> {
            params
                .get(name)
                .map(|text| {
                    OffsetDateTime::parse(text, &Rfc3339)
                        .map(|t| t.to_offset(UtcOffset::UTC))
                        .map_err(|e| {
                            QueryError::new(
                                name,
                                format!(
                                    "{text:?} is not an RFC 3339 timestamp like 2026-11-26T00:00:00Z ({e})"
                                ),
                            )
                        })
                })
                .transpose()
        };
        let (from, to) = (time("from")?, time("to")?);
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - DEFAULT_WINDOW);
        if from > to {
            return Err(QueryError::new("from", "is later than `to`"));
        }
        Ok(Self {
            consumer,
            route,
            from,
            to,
        })
    }
}

fn decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Escape one key segment exactly as the meter plugin does (`tollgate_sdk::state::key_segment`,
/// which the host cannot link: it is guest code): `%`, `:` and control characters as `%XX`. A
/// unit test holds the two to the same rule.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '%' || c == ':' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `YYYYMMDDHH` of a UTC time: the meter's bucket label.
fn hour_label(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

/// Counts of one route, or of all routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    requests: i64,
    status: BTreeMap<&'static str, i64>,
    request_bytes: i64,
    response_bytes: i64,
    upstream_us: i64,
    upstream_count: i64,
}

impl Counts {
    fn add_field(&mut self, field: &str, value: i64) {
        let slot = match field {
            "requests" => &mut self.requests,
            "request_bytes" => &mut self.request_bytes,
            "response_bytes" => &mut self.response_bytes,
            "upstream_us" => &mut self.upstream_us,
            "upstream_count" => &mut self.upstream_count,
            "status_1xx" => self.status.entry("1xx").or_default(),
            "status_2xx" => self.status.entry("2xx").or_default(),
            "status_3xx" => self.status.entry("3xx").or_default(),
            "status_4xx" => self.status.entry("4xx").or_default(),
            "status_5xx" => self.status.entry("5xx").or_default(),
            "status_other" => self.status.entry("other").or_default(),
            _ => return,
        };
        *slot = slot.saturating_add(value);
    }

    fn add(&mut self, other: &Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        for (class, n) in &other.status {
            let slot = self.status.entry(class).or_default();
            *slot = slot.saturating_add(*n);
        }
        self.request_bytes = self.request_bytes.saturating_add(other.request_bytes);
        self.response_bytes = self.response_bytes.saturating_add(other.response_bytes);
        self.upstream_us = self.upstream_us.saturating_add(other.upstream_us);
        self.upstream_count = self.upstream_count.saturating_add(other.upstream_count);
    }

    fn to_json(&self) -> serde_json::Value {
        // The four usual classes always appear; 1xx and "other" only when they happened.
        let mut status = BTreeMap::from([("2xx", 0), ("3xx", 0), ("4xx", 0), ("5xx", 0)]);
        status.extend(self.status.iter().map(|(k, v)| (*k, *v)));
        let avg = (self.upstream_count > 0).then(|| self.upstream_us / self.upstream_count);
        json!({
            "requests": self.requests,
            "status": status,
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "upstream_calls": self.upstream_count,
            "upstream_latency_avg_us": avg,
        })
    }
}

/// The names of the meter instances in `config`: plugins whose module is `meter.wasm`. A
/// gateway that follows a control plane loads modules by content hash
/// (`modules/<sha256>.wasm`), so when no module has that name every plugin instance is read:
/// only a meter writes keys under `<instance>:usage:`.
pub fn meter_instances(config: &Config) -> Vec<String> {
    let named: Vec<String> = config
        .plugins
        .iter()
        .filter(|(_, spec)| {
            spec.module
                .file_name()
                .is_some_and(|name| name == METER_MODULE)
        })
        .map(|(name, _)| name.clone())
        .collect();
    if named.is_empty() {
        config.plugins.keys().cloned().collect()
    } else {
        named
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// The `/admin/usage` answer: sum the buckets of `query.consumer` in `[from, to)` over every meter instance in `meters`.
pub async fn usage(
    state: &dyn StateBackend,
    meters: &[String],
    query: &UsageQuery,
) -> Result<serde_json::Value, StateError> {
    let first = hour_label(query.from);
    // Buckets whose hour starts before `to`: the hour of the last nanosecond before it.
    let last = (query.from < query.to).then(|| hour_label(query.to - Duration::NANOSECOND));
    let route_segment = query.route.as_deref().map(segment);
    let mut routes: BTreeMap<String, Counts> = BTreeMap::new();
    for meter in meters {
        let prefix = format!("{meter}:usage:{}:", segment(&query.consumer));
        for (key, value) in state.scan_counters(&prefix).await? {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            // `<route>:<hour>:<field>`; the route segment has no `:` (escaped by the meter).
            let mut parts = rest.splitn(3, ':');
            let (Some(route), Some(hour), Some(field)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let in_window = hour.len() == 10
                && hour.bytes().all(|b| b.is_ascii_digit())
                && hour >= first.as_str()
                && last.as_deref().is_some_and(|last| hour <= last);
            if !in_window || route_segment.as_deref().is_some_and(|r| r != route) {
                continue;
            }
            routes
                .entry(percent_decode_str(route).decode_utf8_lossy().into_owned())
                .or_default()
                .add_field(field, value);
        }
    }
    let mut total = Counts::default();
    for counts in routes.values() {
        total.add(counts);
    }
    Ok(json!({
        "consumer": query.consumer,
        "from": rfc3339(query.from),
        "to": rfc3339(query.to),
        "route": query.route,
        "meters": meters,
        "routes": routes.iter().map(|(r, c)| (r.clone(), c.to_json())).collect::<serde_json::Map<_, _>>(),
        "total": total.to_json(),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_segments_match_the_sdk() {
        for name in ["alice", "a:b", "50%", "x\ny", "ünï:cødé", ""] {
            assert_eq!(super::segment(name), tollgate_sdk::state::key_segment(name));
        }
    }

    use super::*;
    use crate::runtime::MemoryState;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn query_parsing() {
        let now = at("2026-11-26T13:45:00Z");
        let q = UsageQuery::parse(Some("consumer=al%3Aice&route=api"), now);
        assert_eq!(
            q,
            Ok(UsageQuery {
                consumer: "al:ice".into(),
                route: Some("api".into()),
                from: at("2026-11-25T13:45:00Z"),
                to: now,
            })
        );
        let q = UsageQuery::parse(
            Some("consumer=a&from=2026-11-26T01:00:00%2B01:00&to=2026-11-26T02:00:00Z"),
            now,
        );
        assert_eq!(
            q.map(|q| (q.from, q.to)),
            Ok((at("2026-11-26T00:00:00Z"), at("2026-11-26T02:00:00Z")))
        );
        let param = |query: &str| UsageQuery::parse(Some(query), now).map_err(|e| e.parameter);
        assert_eq!(param("route=api"), Err("consumer".into()));
        assert_eq!(param("consumer="), Err("consumer".into()));
        assert_eq!(param("consumer=a&from=yesterday"), Err("from".into()));
        assert_eq!(
            param("consumer=a&to=2026-13-01T00:00:00Z"),
            Err("to".into())
        );
        assert_eq!(
            param("consumer=a&from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z"),
            Err("from".into())
        );
        assert_eq!(param("consumer=a&form=x"), Err("form".into()));
        assert_eq!(param("consumer=a&consumer=b"), Err("consumer".into()));
        assert!(UsageQuery::parse(None, now).is_err());
    }

    #[tokio::test]
    async fn sums_buckets_in_the_window_per_route() {
        let state = MemoryState::new();
        for (key, n) in [
            ("m:usage:alice:api:2026112612:requests", 2),
            ("m:usage:alice:api:2026112612:status_2xx", 2),
            ("m:usage:alice:api:2026112613:requests", 3),
            ("m:usage:alice:api:2026112613:status_5xx", 3),
            ("m:usage:alice:api:2026112613:upstream_us", 300),
            ("m:usage:alice:api:2026112613:upstream_count", 2),
            ("m:usage:alice:a%3Ab:2026112613:requests", 1),
            ("m:usage:alice:api:2026112614:requests", 100), // after `to`
            ("m:usage:alice:api:2026112611:requests", 100), // before `from`
            ("m:usage:alice%3Aapi:x:2026112613:requests", 100), // another consumer
            ("n:usage:alice:api:2026112613:requests", 10),  // a second meter
            ("other:usage:alice:api:2026112613:requests", 1000), // not a meter
        ] {
            assert!(state.incr(key, n, None).await.is_ok());
        }
        let query = UsageQuery {
            consumer: "alice".into(),
            route: None,
            from: at("2026-11-26T12:30:00Z"),
            to: at("2026-11-26T14:00:00Z"),
        };
        let meters = ["m".to_owned(), "n".to_owned()];
        let usage = usage(&state, &meters, &query).await;
        let usage = usage.unwrap_or_default();
        assert_eq!(usage["routes"]["api"]["requests"], 15, "{usage}");
        assert_eq!(usage["routes"]["api"]["status"]["2xx"], 2);
        assert_eq!(usage["routes"]["api"]["status"]["5xx"], 3);
        assert_eq!(usage["routes"]["api"]["status"]["4xx"], 0);
        assert_eq!(usage["routes"]["api"]["upstream_latency_avg_us"], 150);
        assert_eq!(usage["routes"]["a:b"]["requests"], 1);
        assert_eq!(
            usage["routes"]["a:b"]["upstream_latency_avg_us"],
            serde_json::Value::Null
        );
        assert_eq!(usage["total"]["requests"], 16);
        assert_eq!(usage["from"], "2026-11-26T12:30:00Z");

        let only = UsageQuery {
            route: Some("a:b".into()),
            ..query
        };
        let usage = super::usage(&state, &meters, &only).await;
        assert_eq!(usage.unwrap_or_default()["total"]["requests"], 1);
    }
}
