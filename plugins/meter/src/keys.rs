//! State key layout. Every counter is one field of one hourly bucket:
//!
//! ```text
//! usage:<consumer>:<route>:<YYYYMMDDHH>:<field>
//! ```
//!
//! and the host prefixes it with the plugin's name (`meter:usage:alice:api:2026112613:requests`).
//! Consumer and route names are escaped ([`segment`]) so neither can contain `:`. The gateway's
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

pub use tollgate_sdk::state::key_segment as segment;

/// `usage:<consumer>:<route>:<hour>:` — the bucket's prefix; append a field.
pub fn bucket(consumer: &str, route: &str, hour: &str) -> String {
    format!("usage:{}:{}:{hour}:", segment(consumer), segment(route))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_escaping() {
        assert_eq!(
            bucket("alice", "api", "2026112613"),
            "usage:alice:api:2026112613:"
        );
        assert_eq!(
            bucket("a:b", "c", "2026112613"),
            "usage:a%3Ab:c:2026112613:"
        );
        assert_ne!(bucket("a:b", "c", "1"), bucket("a", "b:c", "1"));
        assert_eq!(segment("50%\t"), "50%25%09");
        assert_eq!(status_field(204), "status_2xx");
        assert_eq!(status_field(502), "status_5xx");
        assert_eq!(status_field(99), "status_other");
        assert_eq!(status_class(404), "4xx");
    }
}
