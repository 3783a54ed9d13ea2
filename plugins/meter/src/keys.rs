//! State key layout. Every counter is one field of one hourly bucket:
//!
//! ```text
//! usage:<consumer>:<route>:<YYYYMMDDHH>:<field>
//! ```
//!
//! and the host prefixes it with the plugin's name (`meter:usage:alice:api:2026112613:requests`).
//! Consumer and route names are escaped ([`tollgate_sdk::state::key_segment`]) so neither can contain `:`. The gateway's
//! admin usage API (`GET /admin/usage`) reads this layout: change both together.

/// Fields of a bucket.
pub const REQUESTS: &str = "requests";
/// Request body bytes received from the client.
pub const REQUEST_BYTES: &str = "request_bytes";
/// Response body bytes sent to the client.
pub const RESPONSE_BYTES: &str = "response_bytes";
/// Sum of the upstream's time to the response head, in microseconds.
pub const UPSTREAM_US: &str = "upstream_us";
/// Requests that reached an upstream (the divisor for an average of `upstream_us`).
pub const UPSTREAM_COUNT: &str = "upstream_count";

/// The status class field: `status_2xx` for 200..=299, and so on (`status_other` outside
/// 100..=599, which the gateway never sends).
pub fn status_field(status: u16) -> &'static str {
    match status / 100 {
        1 => "status_1xx",
        2 => "status_2xx",
        3 => "status_3xx",
        4 => "status_4xx",
        5 => "status_5xx",
        _ => "status_other",
    }
}

/// The status class as a metric label value (`2xx`, ...).
pub fn status_class(status: u16) -> &'static str {
    status_field(status).trim_start_matches("status_")
}

use tollgate_sdk::state::push_key_segment;

use crate::hour;

/// `usage:<consumer>:<route>:<YYYYMMDDHH>:` — the prefix of the bucket of the hour containing
/// `ms`; append a field.
pub fn bucket(consumer: &str, route: &str, ms: u64) -> String {
    let mut out = String::with_capacity(consumer.len() + route.len() + 20);
    out.push_str("usage:");
    push_key_segment(&mut out, consumer);
    out.push(':');
    push_key_segment(&mut out, route);
    out.push(':');
    hour::push_label(&mut out, ms);
    out.push(':');
    out
}

/// The keys of one bucket's fields, written one after another into one buffer.
pub struct Keys {
    text: String,
    /// Where each key ends in `text`.
    ends: Vec<usize>,
}

impl Keys {
    /// `bucket` followed by each of `fields`.
    pub fn new<'a>(bucket: &str, fields: impl Iterator<Item = &'a str>) -> Self {
        let mut text = String::with_capacity(6 * (bucket.len() + 16));
        let mut ends = Vec::with_capacity(6);
        for field in fields {
            text.push_str(bucket);
            text.push_str(field);
            ends.push(text.len());
        }
        Self { text, ends }
    }

    /// The keys, in the order of the fields.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| self.text.get(start..end).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_sdk::state::key_segment as segment;

    #[test]
    fn layout_and_escaping() {
        // 2026-11-26T13:45:30.250Z
        let at = 1_795_700_730_250;
        assert_eq!(bucket("alice", "api", at), "usage:alice:api:2026112613:");
        assert_eq!(bucket("a:b", "c", at), "usage:a%3Ab:c:2026112613:");
        assert_ne!(bucket("a:b", "c", at), bucket("a", "b:c", at));
        let keys = Keys::new("usage:a:b:1:", [REQUESTS, "status_2xx"].into_iter());
        let keys: Vec<&str> = keys.iter().collect();
        assert_eq!(keys, ["usage:a:b:1:requests", "usage:a:b:1:status_2xx"]);
        assert_eq!(segment("50%\t"), "50%25%09");
        assert_eq!(status_field(204), "status_2xx");
        assert_eq!(status_field(502), "status_5xx");
        assert_eq!(status_field(99), "status_other");
        assert_eq!(status_class(404), "4xx");
    }
}
