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

    /// The request body. Needs [`crate::Capabilities::request_body`]; without it this fails.
    pub fn body(&self) -> Result<Vec<u8>, String> {
        self.raw.body()
    }

    /// Replace the request body (Content-Length is recomputed). Needs
    /// [`crate::Capabilities::request_body`].
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

    /// The response body. Needs [`crate::Capabilities::response_body`].
    pub fn body(&self) -> Result<Vec<u8>, String> {
        self.raw.body()
    }

    /// Replace the response body (Content-Length is recomputed). Needs
    /// [`crate::Capabilities::response_body`].
    pub fn set_body(&self, body: impl AsRef<[u8]>) -> Result<(), String> {
        self.raw.set_body(body.as_ref())
    }
}
