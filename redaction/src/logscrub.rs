//! Access-log scrubbing. The gateway's access logger writes, for each of the fields below, the
//! request-context value `access_log.<field>` instead of the raw value when that key is set. So
//! this plugin computes masked values in the request phase and sets those keys; the request
//! itself (what plugins and the upstream see) is not changed.
//!
//! - `path`, `user_agent`: the detectors run on the (percent-decoded) text.
//! - `query`, `referer`: each query parameter is decoded; a parameter whose name is a bare field
//!   rule (`ssn`) is masked whole, the others go through the detectors; the query is re-encoded.
//! - `client_ip`, `consumer`: identifiers in themselves, masked whole (`[log] style`, e.g.
//!   `hash` so one client's lines stay joinable).

use crate::config::Settings;
use crate::json::FieldRule;
use crate::mask::Style;

/// A field of the access log that can be scrubbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    /// The request path.
    Path,
    /// The query string.
    Query,
    /// The client's IP address.
    ClientIp,
    /// The consumer set by an auth plugin.
    Consumer,
    /// The `User-Agent` header.
    UserAgent,
    /// The `Referer` header.
    Referer,
}

impl LogField {
    /// Config names, in order.
    pub const NAMES: &[&str] = &[
        "path",
        "query",
        "client_ip",
        "consumer",
        "user_agent",
        "referer",
    ];

    /// Parse a config name.
    pub fn parse(name: &str) -> Option<LogField> {
        Some(match name {
            "path" => LogField::Path,
            "query" => LogField::Query,
            "client_ip" => LogField::ClientIp,
            "consumer" => LogField::Consumer,
            "user_agent" => LogField::UserAgent,
            "referer" => LogField::Referer,
            _ => return None,
        })
    }

    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            LogField::Path => "path",
            LogField::Query => "query",
            LogField::ClientIp => "client_ip",
            LogField::Consumer => "consumer",
            LogField::UserAgent => "user_agent",
            LogField::Referer => "referer",
        }
    }

    /// The request-context key the access logger reads.
    pub fn context_key(self) -> String {
        format!("access_log.{}", self.name())
    }

    /// Whether the value is masked whole rather than scanned.
    pub fn masked_whole(self) -> bool {
        matches!(self, LogField::ClientIp | LogField::Consumer)
    }
}

/// The masked value of `field`, or `None` when the raw value can be logged as it is.
pub fn scrub(
    settings: &Settings,
    field: LogField,
    value: &str,
    counts: &mut [u64],
) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    match field {
        LogField::ClientIp | LogField::Consumer => {
            let style = settings.log_style(Style::Full);
            if let Some(c) = settings.log_rule(field).and_then(|r| counts.get_mut(r)) {
                *c += 1;
            }
            Some(settings.masker.mask(style, value))
        }
        LogField::Path => {
            let decoded = percent_decode(value, false);
            settings
                .detectors
                .redact(&decoded, &settings.masker, counts)
                .map(|s| encode(&s, b"%?#"))
        }
        LogField::UserAgent => settings.detectors.redact(value, &settings.masker, counts),
        LogField::Query => scrub_query(settings, value, counts),
        LogField::Referer => {
            let (head, query) = match value.split_once('?') {
                Some((h, q)) => (h, Some(q)),
                None => (value, None),
            };
            let new_head =
                settings
                    .detectors
                    .redact(&percent_decode(head, false), &settings.masker, counts);
            let new_query = query.and_then(|q| scrub_query(settings, q, counts));
            if new_head.is_none() && new_query.is_none() {
                return None;
            }
            let mut out = match new_head {
                Some(h) => encode(&h, b"%?#"),
                None => head.to_owned(),
            };
            if let Some(q) = query {
                out.push('?');
                out.push_str(new_query.as_deref().unwrap_or(q));
            }
            Some(out)
        }
    }
}

/// Scrub a query string parameter by parameter.
fn scrub_query(settings: &Settings, query: &str, counts: &mut [u64]) -> Option<String> {
    let mut changed = false;
    let mut parts = Vec::new();
    for pair in query.split('&') {
        let (raw_name, raw_value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        let name = percent_decode(raw_name, true);
        let by_name = settings
            .fields
            .iter()
            .find(|f: &&FieldRule| f.pattern.matches_name(&name));
        let new_value = match (by_name, raw_value) {
            (Some(rule), Some(v)) if !v.is_empty() => {
                if let Some(c) = counts.get_mut(rule.rule) {
                    *c += 1;
                }
                Some(settings.masker.mask(rule.style, &percent_decode(v, true)))
            }
            (_, Some(v)) => {
                settings
                    .detectors
                    .redact(&percent_decode(v, true), &settings.masker, counts)
            }
            (_, None) => None,
        };
        // A parameter name can be personal data too (`?alice@example.com`).
        let new_name = settings.detectors.redact(&name, &settings.masker, counts);
        if new_value.is_none() && new_name.is_none() {
            parts.push(pair.to_owned());
            continue;
        }
        changed = true;
        let mut part = match new_name {
            Some(n) => encode(&n, b"%&=+# "),
            None => raw_name.to_owned(),
        };
        if let Some(v) = raw_value {
            part.push('=');
            match new_value {
                Some(nv) => part.push_str(&encode(&nv, b"%&=+# ")),
                None => part.push_str(v),
            }
        }
        parts.push(part);
    }
    changed.then(|| parts.join("&"))
}

/// Decode `%XX` escapes (and `+` as a space in a query); invalid escapes stay as they are.
/// Bytes that are not UTF-8 after decoding are replaced (the detectors see text).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    if !s.contains('%') && (!plus_is_space || !s.contains('+')) {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = match (
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (Some(hi), Some(lo)) if b[i] == b'%' => Some(hi * 16 + lo),
            _ => None,
        };
        match b[i] {
            b'%' if escaped.is_some() => {
                out.push(escaped.unwrap_or_default());
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode the bytes in `special`, control characters and spaces; the rest (masks such
/// as `[REDACTED]`, non-ASCII text) stays readable in the log.
fn encode(s: &str, special: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let escape = c.is_control() || c == ' ' || (c.is_ascii() && special.contains(&(c as u8)));
        if escape {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawConfig, validate};
    use serde_json::json;

    fn settings(v: serde_json::Value) -> Settings {
        let raw: RawConfig = tollgate_sdk::parse_config(&v.to_string()).expect("parses");
        validate(raw).expect("valid")
    }

    fn run(s: &Settings, field: LogField, value: &str) -> Option<String> {
        let mut counts = vec![0; s.rule_names.len()];
        scrub(s, field, value, &mut counts)
    }

    #[test]
    fn query_parameters_by_name_and_by_detector() {
        let s = settings(json!({
            "fields": ["ssn", {"match": "token", "style": "partial"}],
            "detectors": ["email"],
            "log": {"fields": ["query"]},
        }));
        assert_eq!(
            run(
                &s,
                LogField::Query,
                "email=alice%40example.com&ssn=123-45-6789&page=2&token=abcdefgh12345678"
            )
            .as_deref(),
            Some("email=[REDACTED]&ssn=[REDACTED]&page=2&token=****5678")
        );
        assert_eq!(run(&s, LogField::Query, "page=2&q=shoes"), None);
        assert_eq!(
            run(&s, LogField::Query, "to=a+b%40example.com&flag").as_deref(),
            Some("to=a%20[REDACTED]&flag")
        );
    }

    #[test]
    fn path_user_agent_and_referer() {
        let s = settings(json!({"detectors": ["email", "ipv4"], "log": {"fields": ["path"]}}));
        assert_eq!(
            run(&s, LogField::Path, "/users/alice%40example.com/orders").as_deref(),
            Some("/users/[REDACTED]/orders")
        );
        assert_eq!(run(&s, LogField::Path, "/users/42"), None);
        assert_eq!(
            run(&s, LogField::UserAgent, "probe/1.0 (from 10.1.2.3)").as_deref(),
            Some("probe/1.0 (from [REDACTED])")
        );
        assert_eq!(
            run(
                &s,
                LogField::Referer,
                "https://shop.example/?email=bob%40example.com&x=1"
            )
            .as_deref(),
            Some("https://shop.example/?email=[REDACTED]&x=1")
        );
    }

    #[test]
    fn client_ip_and_consumer_are_masked_whole_and_counted() {
        let s = settings(json!({
            "hash_key": "0123456789abcdef0123",
            "log": {"fields": ["client_ip", "consumer"], "style": "hash"},
        }));
        let mut counts = vec![0; s.rule_names.len()];
        let a = scrub(&s, LogField::ClientIp, "203.0.113.9", &mut counts).expect("masked");
        assert!(a.starts_with("hmac:"), "{a}");
        assert_eq!(
            scrub(&s, LogField::ClientIp, "203.0.113.9", &mut counts),
            Some(a)
        );
        assert!(scrub(&s, LogField::Consumer, "alice", &mut counts).is_some());
        assert_eq!(counts, vec![2, 1]);
        assert_eq!(s.rule_names, ["log:client_ip", "log:consumer"]);
    }

    #[test]
    fn decoding_and_encoding() {
        assert_eq!(percent_decode("a%40b%2", false), "a@b%2");
        assert_eq!(percent_decode("a+b%zz", true), "a b%zz");
        assert_eq!(encode("a b&c=[X]%", b"%&=+# "), "a%20b%26c%3D[X]%25");
    }

    #[test]
    fn context_keys() {
        assert_eq!(LogField::Query.context_key(), "access_log.query");
        for name in LogField::NAMES {
            assert_eq!(LogField::parse(name).map(LogField::name), Some(*name));
        }
    }
}
