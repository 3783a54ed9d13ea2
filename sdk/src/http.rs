//! Typed views of the host's request and response handles. Each method is one call into the
//! gateway that fetches or changes one thing, so a plugin pays only for what it touches.

use crate::__private::tollgate::plugin::types as raw;

/// The request travelling through the chain.
///
/// Changes made in the request phase are seen by later plugins and sent upstream. In the response
/// phase the request is read-only: it shows what was sent upstream and setters have no effect.
/// Header names are case-insensitive.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    raw: &'a raw::Request,
}

impl<'a> Request<'a> {
    pub(crate) fn new(raw: &'a raw::Request) -> Self {
        Self { raw }
    }

    /// The HTTP method, upper case (`GET`, `POST`, ...).
    pub fn method(&self) -> String {
        self.raw.method()
    }

    /// Replace the method. Fails when the value is not a valid method token.
    pub fn set_method(&self, method: &str) -> Result<(), String> {
        self.raw.set_method(method)
    }

    /// The normalised path (the one routing saw and the upstream receives).
    pub fn path(&self) -> String {
        self.raw.path()
    }

    /// Replace the path. It must start with `/` and is normalised by the gateway's path rule;
    /// a path that the rule rejects is refused.
    pub fn set_path(&self, path: &str) -> Result<(), String> {
        self.raw.set_path(path)
    }

    /// The raw query string without the leading `?`, if any.
    pub fn query(&self) -> Option<String> {
        self.raw.query()
    }

    /// Replace (`Some`) or remove (`None`) the query string, without the leading `?`.
    pub fn set_query(&self, query: Option<&str>) {
        self.raw.set_query(query)
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw.header(name)
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.raw.header_all(name)
    }

    /// Replace every value of a header with one value. Fails on an invalid name or value.
    pub fn set_header(&self, name: &str, value: &str) -> Result<(), String> {
        self.raw.set_header(name, value)
    }

    /// Add one more value to a header, keeping the existing ones.
    pub fn append_header(&self, name: &str, value: &str) -> Result<(), String> {
        self.raw.append_header(name, value)
    }

    /// Remove every value of a header; removing an absent header is fine.
    pub fn remove_header(&self, name: &str) {
        self.raw.remove_header(name)
    }

    /// Every header as `(name, value)` pairs, names lower case. Copies all headers across the
    /// boundary: prefer [`Request::header`] when you know the name.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.raw.headers()
    }

    /// The request body. The gateway reads it from the client the first time a plugin of the
    /// chain asks (later calls get the same bytes); a request whose plugins never ask streams to
    /// the upstream. So call it only when you need it: after checking the method or the
    /// credentials, a GET or an unauthenticated request is never buffered. Fails when the body
    /// is over the gateway's `limits.max_body_bytes` (the client gets 413 whatever you answer),
    /// when the client breaks off, and in the response phase when nobody read it before.
    pub fn body(&self) -> Result<Vec<u8>, String> {
        self.raw.body()
    }

    /// Replace the request body (Content-Length is recomputed). Request phase only.
    pub fn set_body(&self, body: impl AsRef<[u8]>) -> Result<(), String> {
        self.raw.set_body(body.as_ref())
    }

    /// The client's IP address as text (the TCP peer, or the address the gateway's
    /// trusted-proxy rule derived).
    pub fn client_ip(&self) -> String {
        self.raw.client_ip()
    }

    /// The name of the route this request matched.
    pub fn route(&self) -> String {
        self.raw.route()
    }
}

/// The upstream's response travelling back through the chain (reverse order).
/// Header names are case-insensitive.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    raw: &'a raw::Response,
}

impl<'a> Response<'a> {
    pub(crate) fn new(raw: &'a raw::Response) -> Self {
        Self { raw }
    }

    /// The handle, for imports that take the response (`redaction`).
    pub(crate) fn raw(&self) -> &'a raw::Response {
        self.raw
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.raw.status()
    }

    /// Replace the status code. Fails when it is not in 100..=599.
    pub fn set_status(&self, status: u16) -> Result<(), String> {
        self.raw.set_status(status)
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw.header(name)
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.raw.header_all(name)
    }

    /// Replace every value of a header with one value. Fails on an invalid name or value.
    pub fn set_header(&self, name: &str, value: &str) -> Result<(), String> {
        self.raw.set_header(name, value)
    }

    /// Add one more value to a header, keeping the existing ones.
    pub fn append_header(&self, name: &str, value: &str) -> Result<(), String> {
        self.raw.append_header(name, value)
    }

    /// Remove every value of a header; removing an absent header is fine.
    pub fn remove_header(&self, name: &str) {
        self.raw.remove_header(name)
    }

    /// Every header as `(name, value)` pairs, names lower case.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.raw.headers()
    }

    /// The response body, read from the upstream the first time a plugin asks (a response
    /// whose plugins never ask streams to the client). Fails when it is over
    /// `limits.max_response_body_bytes` (the client gets 502) or the upstream breaks off.
    pub fn body(&self) -> Result<Vec<u8>, String> {
        self.raw.body()
    }

    /// Replace the response body (Content-Length is recomputed).
    pub fn set_body(&self, body: impl AsRef<[u8]>) -> Result<(), String> {
        self.raw.set_body(body.as_ref())
    }

    /// `Some` when the upstream failed (connect refused, timeout, reset) and this response is the
    /// gateway's own 502/504: release what `on_request` took (a lock, a reservation) here.
    /// [`UpstreamError::request_sent`] says whether the upstream may have acted on the request.
    pub fn upstream_error(&self) -> Option<UpstreamError> {
        self.raw.upstream_error().map(UpstreamError::from)
    }
}

/// How the upstream exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// No connection: the upstream never saw the request.
    Connect,
    /// No response head within the upstream's timeout.
    Timeout,
    /// The connection closed or reset before a complete response head.
    Reset,
    /// Anything else (an invalid response).
    Other,
}

/// The upstream failed and the gateway answered the client itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// What happened.
    pub kind: UpstreamErrorKind,
    /// False only when no byte of the request reached the upstream (so it did not act on it).
    pub request_sent: bool,
    /// The status the gateway answered (502 or 504).
    pub status: u16,
    /// A short description for logs.
    pub message: String,
}

impl From<raw::UpstreamError> for UpstreamError {
    fn from(e: raw::UpstreamError) -> Self {
        UpstreamError {
            kind: match e.kind {
                raw::UpstreamErrorKind::Connect => UpstreamErrorKind::Connect,
                raw::UpstreamErrorKind::Timeout => UpstreamErrorKind::Timeout,
                raw::UpstreamErrorKind::Reset => UpstreamErrorKind::Reset,
                raw::UpstreamErrorKind::Other => UpstreamErrorKind::Other,
            },
            request_sent: e.request_sent,
            status: e.status,
            message: e.message,
        }
    }
}
