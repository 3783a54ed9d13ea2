//! The response the client receives: hop-by-hop headers stripped, and framing decided by the
//! gateway (the upstream's length for a streamed body, the bytes' length for a buffered or
//! replaced one, no body where HTTP allows none).

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::body::{ProxyBody, full};
use super::headers;
use crate::chain::ResponseState;

/// The client's response from the state after the response phase. `upstream_body` is the
/// upstream's body when it streams (its `upstream_length` is kept); `method` is the client's.
pub(crate) fn client_response(
    mut response: ResponseState,
    upstream_body: Option<ProxyBody>,
    upstream_length: Option<HeaderValue>,
    method: &Method,
) -> Response<ProxyBody> {
    // Plugins may have added connection-level headers; they never reach the client.
    headers::strip_hop_by_hop(&mut response.headers);
    let status = response.status;
    // No body bytes go out for these, whatever the upstream or a plugin put there (HTTP/2 would
    // otherwise send DATA frames after a HEAD or 204).
    let no_body = *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // 1xx and 204 never carry Content-Length (RFC 9110 §8.6).
    let no_length = status.is_informational() || status == StatusCode::NO_CONTENT;
    let body = match upstream_body {
        Some(incoming) => {
            restore_length(&mut response.headers, upstream_length);
            if no_length {
                response.headers.remove(CONTENT_LENGTH);
            }
            if no_body {
                full(Bytes::new())
            } else {
                incoming
            }
        }
        None => {
            // Buffered, replaced by a plugin, or a plugin's reply: the length is the bytes'.
            let bytes = response.body.take().unwrap_or_default();
            if no_length || status == StatusCode::NOT_MODIFIED {
                response.headers.remove(CONTENT_LENGTH);
            } else if *method == Method::HEAD && bytes.is_empty() {
                // The upstream's HEAD answer declares the length a GET would get; keep it.
            } else {
                response
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            }
            full(if no_body { Bytes::new() } else { bytes })
        }
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = response.headers;
    out
}

/// A streamed body keeps exactly the upstream's declared length, whatever plugins did to it.
fn restore_length(headers: &mut HeaderMap, length: Option<HeaderValue>) {
    headers.remove(CONTENT_LENGTH);
    if let Some(length) = length {
        headers.insert(CONTENT_LENGTH, length);
    }
}
