//! Outgoing HTTP calls made by the gateway on the plugin's behalf. Only upstreams listed in the
//! plugin's `fetch` setting in `gateway.toml` can be called.

use crate::__private::tollgate::plugin::http_client as raw;

pub use raw::{IncomingResponse, OutgoingRequest};

/// Send every request concurrently and wait for all answers, in request order.
pub fn fetch(requests: &[OutgoingRequest]) -> Vec<Result<IncomingResponse, String>> {
    raw::fetch(requests)
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
