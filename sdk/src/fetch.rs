//! Outgoing HTTP calls made by the gateway on the plugin's behalf. Only upstreams listed in the
//! plugin's `fetch` setting in `gateway.toml` can be called.

use crate::__private::tollgate::plugin::http_client as raw;

pub use raw::IncomingResponse;

/// A request for [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// The name of an upstream from the config that this plugin may call.
    pub upstream: String,
    /// HTTP method, upper case.
    pub method: String,
    /// Path and optional query, starting with `/` (normalised by the host's path rule).
    pub path_and_query: String,
    /// Request headers (hop-by-hop headers are dropped).
    pub headers: Vec<(String, String)>,
    /// Request body (may be empty).
    pub body: Vec<u8>,
    /// Deadline for this request in milliseconds; 0 means the upstream's request timeout.
    pub timeout_ms: u32,
}

/// Send every request concurrently and wait for all answers, in request order.
pub fn fetch(requests: &[OutgoingRequest]) -> Vec<Result<IncomingResponse, String>> {
    // The import borrows every string: only the header lists are rebuilt, as borrowed pairs.
    let headers: Vec<Vec<(&str, &str)>> = requests
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect()
        })
        .collect();
    let borrowed: Vec<raw::OutgoingRequest<'_>> = requests
        .iter()
        .zip(&headers)
        .map(|(r, headers)| raw::OutgoingRequest {
            upstream: &r.upstream,
            method: &r.method,
            path_and_query: &r.path_and_query,
            headers,
            body: &r.body,
            timeout_ms: r.timeout_ms,
        })
        .collect();
    raw::fetch(&borrowed)
}

/// A GET request to `upstream` at `path_and_query`, with no headers and the upstream's timeout.
pub fn get(upstream: &str, path_and_query: &str) -> OutgoingRequest {
    OutgoingRequest {
        upstream: upstream.to_owned(),
        method: "GET".to_owned(),
        path_and_query: path_and_query.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout_ms: 0,
    }
}
