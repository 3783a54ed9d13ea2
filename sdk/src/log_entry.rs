use crate::__private::tollgate::plugin::types as raw;

/// A summary of a finished exchange, given to [`crate::Plugin::on_log`] after the client has
/// the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Route name.
    pub route: String,
    /// Request method.
    pub method: String,
    /// Path as sent upstream.
    pub path: String,
    /// Status sent to the client.
    pub status: u16,
    /// Client IP as text.
    pub client_ip: String,
    /// Request body bytes received from the client.
    pub request_bytes: u64,
    /// Response body bytes sent to the client.
    pub response_bytes: u64,
    /// Time from the request's arrival to the end of the response, in microseconds.
    pub duration_micros: u64,
    /// Time spent waiting for the upstream's response head, in microseconds, when the upstream
    /// was called.
    pub upstream_micros: Option<u64>,
    /// The upstream target that served the request (`host:port`), when one did.
    pub upstream: Option<String>,
    /// Set when the upstream failed and the gateway answered the error itself.
    pub upstream_error: Option<crate::UpstreamError>,
}

impl From<raw::LogEntry> for LogEntry {
    fn from(e: raw::LogEntry) -> Self {
        LogEntry {
            route: e.route,
            method: e.method,
            path: e.path,
            status: e.status,
            client_ip: e.client_ip,
            request_bytes: e.request_bytes,
            response_bytes: e.response_bytes,
            duration_micros: e.duration_micros,
            upstream_micros: e.upstream_micros,
            upstream: e.upstream,
            upstream_error: e.upstream_error.map(Into::into),
        }
    }
}
