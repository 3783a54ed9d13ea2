//! Every way the proxy can refuse or fail a request, and the one place that turns them into HTTP
//! responses: a status and a JSON body `{"error": "<code>", "message": "<text>", ...}`.

use std::time::Duration;

use http::header::{ALLOW, CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{Map, Value, json};
use thiserror::Error;

use super::body::{ProxyBody, full};
use crate::chain::{FailureKind, PluginFailure};
use crate::path::PathError;

/// A boxed error for body streams and client failures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the proxy answered a request itself instead of relaying the upstream's response.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The path broke the normalisation rule.
    #[error("bad request path: {0}")]
    BadPath(#[from] PathError),
    /// The request names no host, or one that parsers could read differently
    /// ([`super::host`]).
    #[error("bad host: {0}")]
    BadHost(String),
    /// More request headers than `limits.max_header_count`.
    #[error("too many request headers: {count} (limit {limit})")]
    TooManyHeaders {
        /// Headers received.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Header names and values together larger than `limits.max_header_bytes`.
    #[error("request headers too large: {size} bytes (limit {limit})")]
    HeadersTooLarge {
        /// Bytes received.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A header name the gateway refuses (`_` in it: `X_Consumer` and `X-Consumer` look alike to
    /// CGI-style upstreams).
    #[error("header `{name}` has an underscore in its name; use `-`")]
    InvalidHeader {
        /// The header name.
        name: String,
    },
    /// The request body is, or declares to be, larger than `limits.max_body_bytes`.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// The client stopped sending its body for longer than `server.body_read_timeout_ms`.
    #[error("the request body stalled: nothing arrived for {timeout:?}")]
    BodyTimeout {
        /// The configured body read timeout.
        timeout: Duration,
    },
    /// Buffering the body would pass `[limits] max_buffered_bytes`, the cap on body bytes held
    /// for plugins across all requests ([`super::budget`]).
    #[error("the gateway is buffering too many request bodies; try again later")]
    BufferBudgetExhausted,
    /// The listener already holds `server.max_connections` connections (written before hyper
    /// owns the connection, see [`ProxyError::to_http1`]).
    #[error("the gateway is at its connection limit ({limit}); try again later")]
    TooManyConnections {
        /// The configured limit.
        limit: usize,
    },
    /// The request body could not be read from the client.
    #[error("could not read the request body: {0}")]
    ClientBody(#[source] BoxError),
    /// No route matches the host and path.
    #[error("no route matches this host and path")]
    NoRoute,
    /// Routes match the host and path, but none allows the method.
    #[error("method {method} is not allowed here")]
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// Methods some matching route allows.
        allow: Vec<Method>,
    },
    /// A plugin failed and its policy fails the request.
    #[error(transparent)]
    Plugin(#[from] PluginFailure),
    /// A plugin turned the request into something that cannot be sent (e.g. a path that breaks
    /// the normalisation rule).
    #[error("the plugin chain produced an invalid request: {0}")]
    InvalidRewrite(String),
    /// The upstream could not be reached.
    #[error("upstream `{upstream}` is unreachable ({target}): {source}")]
    UpstreamConnect {
        /// Upstream name.
        upstream: String,
        /// The target tried.
        target: String,
        /// The connect error.
        #[source]
        source: BoxError,
    },
    /// Every target of the upstream is unhealthy or ejected: the gateway fails fast.
    #[error("upstream `{upstream}` has no healthy target")]
    NoHealthyUpstream {
        /// Upstream name.
        upstream: String,
    },
    /// The upstream did not send a response head in time.
    #[error("upstream `{upstream}` did not answer within {timeout:?} ({target})")]
    UpstreamTimeout {
        /// Upstream name.
        upstream: String,
        /// The target tried.
        target: String,
        /// The configured request timeout.
        timeout: Duration,
    },
    /// The exchange with the upstream failed after connecting.
    #[error("upstream `{upstream}` failed ({target}): {source}")]
    Upstream {
        /// Upstream name.
        upstream: String,
        /// The target tried.
        target: String,
        /// The error.
        #[source]
        source: BoxError,
    },
    /// Plain HTTP on a listener with `plain_http = "redirect"` (docs/tls.md): 308 to HTTPS.
    #[error("this listener serves HTTPS only: {location}")]
    HttpsRedirect {
        /// The HTTPS URL of the same resource.
        location: String,
    },
    /// Plain HTTP on a listener with `plain_http = "refuse"` (docs/tls.md).
    #[error("this listener serves HTTPS only; use https://")]
    HttpsRequired,
    /// The upstream's body was larger than `limits.max_response_body_bytes` while a plugin needed
    /// it buffered.
    #[error("upstream `{upstream}` sent a response body larger than {limit} bytes")]
    UpstreamBodyTooLarge {
        /// Upstream name.
        upstream: String,
        /// The configured limit.
        limit: u64,
    },
}

impl ProxyError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadPath(_)
            | ProxyError::BadHost(_)
            | ProxyError::ClientBody(_)
            | ProxyError::InvalidHeader { .. } => StatusCode::BAD_REQUEST,
            ProxyError::TooManyHeaders { .. } | ProxyError::HeadersTooLarge { .. } => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::TooManyConnections { .. } | ProxyError::BufferBudgetExhausted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::Plugin(f) => match f.kind {
                FailureKind::Trap | FailureKind::BadAction => StatusCode::INTERNAL_SERVER_ERROR,
                FailureKind::Timeout
                | FailureKind::MemoryLimit
                | FailureKind::Unavailable
                | FailureKind::StateUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            },
            ProxyError::InvalidRewrite(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::UpstreamConnect { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::UpstreamBodyTooLarge { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::NoHealthyUpstream { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::HttpsRedirect { .. } => StatusCode::PERMANENT_REDIRECT,
            ProxyError::HttpsRequired => StatusCode::FORBIDDEN,
        }
    }

    /// A stable machine-readable code for the JSON body and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::BadPath(_) => "bad_path",
            ProxyError::BadHost(_) => "bad_host",
            ProxyError::TooManyHeaders { .. } => "too_many_headers",
            ProxyError::HeadersTooLarge { .. } => "headers_too_large",
            ProxyError::InvalidHeader { .. } => "invalid_header",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::ClientBody(_) => "bad_request_body",
            ProxyError::BodyTimeout { .. } => "body_timeout",
            ProxyError::TooManyConnections { .. } => "too_many_connections",
            ProxyError::BufferBudgetExhausted => "buffer_budget_exhausted",
            ProxyError::NoRoute => "no_route",
            ProxyError::MethodNotAllowed { .. } => "method_not_allowed",
            ProxyError::Plugin(f) if f.kind == FailureKind::StateUnavailable => "state_unavailable",
            ProxyError::Plugin(_) => "plugin_failed",
            ProxyError::InvalidRewrite(_) => "invalid_rewrite",
            ProxyError::UpstreamConnect { .. } => "upstream_unavailable",
            ProxyError::UpstreamTimeout { .. } => "upstream_timeout",
            ProxyError::NoHealthyUpstream { .. } => "no_healthy_upstream",
            ProxyError::Upstream { .. } => "upstream_error",
            ProxyError::UpstreamBodyTooLarge { .. } => "upstream_body_too_large",
            ProxyError::HttpsRedirect { .. } => "https_redirect",
            ProxyError::HttpsRequired => "https_required",
        }
    }

    /// The one mapping from an error to the response the client gets.
    pub fn into_response(self) -> Response<ProxyBody> {
        let bytes = self.json_body();
        let mut response = Response::new(full(bytes));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let ProxyError::MethodNotAllowed { allow, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&method_names(allow).join(", "))
        {
            headers.insert(ALLOW, value);
        }
        if let ProxyError::HttpsRedirect { location } = &self
            && let Ok(value) = HeaderValue::from_str(location)
        {
            headers.insert(http::header::LOCATION, value);
        }
        // The rest of a stalled body may still arrive and would be read as the next request.
        if self.closes_connection() {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// Whether the answer ends the connection (`Connection: close`).
    fn closes_connection(&self) -> bool {
        // A body that could not be read leaves the stream's framing unknown.
        matches!(
            self,
            ProxyError::BodyTimeout { .. }
                | ProxyError::TooManyConnections { .. }
                | ProxyError::ClientBody(_)
        )
    }

    /// The same answer as [`ProxyError::into_response`], as raw HTTP/1.1 bytes with
    /// `Connection: close`: for refusals written on a socket before hyper serves it (the
    /// connection limit).
    pub fn to_http1(&self) -> Vec<u8> {
        let body = self.json_body();
        let status = self.status();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_str(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
        )
        .into_bytes()
    }

    /// `{"error": code, "message": text, ...}`.
    fn json_body(&self) -> String {
        let mut body = Map::new();
        body.insert("error".into(), json!(self.code()));
        // The upstream's own error text can carry internal addresses: keep it for the log only.
        let message = match self {
            ProxyError::UpstreamConnect { upstream, .. } => {
                format!("upstream `{upstream}` is unreachable")
            }
            ProxyError::Upstream { upstream, .. } => {
                format!("the exchange with upstream `{upstream}` failed")
            }
            // The parser's reason is about the client's own bytes: say what was wrong.
            ProxyError::ClientBody(e) => format!("could not read the request body: {e}"),
            ProxyError::UpstreamTimeout {
                upstream, timeout, ..
            } => format!("upstream `{upstream}` did not answer within {timeout:?}"),
            other => other.to_string(),
        };
        body.insert("message".into(), json!(message));
        match self {
            ProxyError::Plugin(f) => {
                body.insert("plugin".into(), json!(&*f.plugin));
                body.insert("kind".into(), json!(f.kind.as_str()));
            }
            ProxyError::UpstreamConnect { upstream, .. }
            | ProxyError::UpstreamTimeout { upstream, .. }
            | ProxyError::Upstream { upstream, .. }
            | ProxyError::UpstreamBodyTooLarge { upstream, .. }
            | ProxyError::NoHealthyUpstream { upstream } => {
                body.insert("upstream".into(), json!(upstream));
            }
            ProxyError::MethodNotAllowed { allow, .. } => {
                body.insert("allow".into(), json!(method_names(allow)));
            }
            ProxyError::InvalidHeader { name } => {
                body.insert("header".into(), json!(name));
            }
            ProxyError::HttpsRedirect { location } => {
                body.insert("location".into(), json!(location));
            }
            _ => {}
        }
        Value::Object(body).to_string()
    }
}

fn method_names(methods: &[Method]) -> Vec<&str> {
    methods.iter().map(Method::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn plugin_failures_name_the_plugin() {
        let failure = PluginFailure {
            plugin: Arc::from("auth"),
            kind: FailureKind::Timeout,
            message: "deadline".into(),
        };
        let response = ProxyError::Plugin(failure).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn state_failures_are_503_state_unavailable() {
        let failure = PluginFailure {
            plugin: Arc::from("quota"),
            kind: FailureKind::StateUnavailable,
            message: "state backend: redis: connection refused".into(),
        };
        let error = ProxyError::Plugin(failure);
        assert_eq!(error.code(), "state_unavailable");
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn connection_limit_is_a_complete_http1_answer() {
        let bytes = ProxyError::TooManyConnections { limit: 3 }.to_http1();
        let text = String::from_utf8(bytes).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}", body.len())),
            "{head}"
        );
        let json: Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(json["error"], "too_many_connections");
    }

    #[test]
    fn method_not_allowed_sets_allow() {
        let response = ProxyError::MethodNotAllowed {
            method: Method::DELETE,
            allow: vec![Method::GET, Method::POST],
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, POST");
    }
}
