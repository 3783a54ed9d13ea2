//! The request a target receives: the state after the request phase, the gateway's forwarding
//! headers set last, and framing decided by the gateway from what the client sent, never by a
//! plugin.

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Request, Uri, Version};

use super::pool::UpstreamPool;
use crate::chain::RequestState;
use crate::path::normalize_path;
use crate::proxy::body::{ProxyBody, full};
use crate::proxy::client::Origin;
use crate::proxy::error::ProxyError;
use crate::proxy::headers::{self, X_REQUEST_ID};

/// How the client framed its body, remembered before its headers become the plugins' to change.
#[derive(Debug, Clone)]
pub struct Framing {
    content_length: Option<HeaderValue>,
    /// The client sent a body (declared by Content-Length or Transfer-Encoding).
    pub has_body: bool,
}

impl Framing {
    /// Read the framing from the client's request headers.
    pub fn of(headers: &HeaderMap) -> Self {
        let content_length = headers.get(CONTENT_LENGTH).cloned();
        let has_body =
            content_length.is_some() || headers.contains_key(http::header::TRANSFER_ENCODING);
        Self {
            content_length,
            has_body,
        }
    }
}

/// The request for `target` of `pool`. `streamed` is the client's body when it was not
/// buffered (only the first attempt gets it); otherwise the buffered body (or none) is sent.
pub fn upstream_request(
    state: &mut RequestState,
    origin: &Origin,
    framing: &Framing,
    pool: &UpstreamPool,
    target: &str,
    authority: Option<&str>,
    streamed: Option<ProxyBody>,
) -> Result<Request<ProxyBody>, ProxyError> {
    // A plugin may rewrite the path; the rewritten path obeys the same rule.
    let path = normalize_path(&state.path)
        .map_err(|e| ProxyError::InvalidRewrite(format!("rewritten path: {e}")))?;
    state.path = path;
    let mut uri = format!("{}://{target}{}", pool.scheme(), state.path);
    if let Some(query) = &state.query {
        uri.push('?');
        uri.push_str(query);
    }
    let uri: Uri = uri
        .parse()
        .map_err(|e| ProxyError::InvalidRewrite(format!("upstream URI: {e}")))?;

    let mut headers = state.headers.clone();
    headers::strip_hop_by_hop(&mut headers);
    headers::set_forwarding(
        &mut headers,
        origin.peer,
        origin.forwarded_chain.as_deref(),
        authority,
    );
    if let Ok(value) = HeaderValue::from_str(&state.request_id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
    headers.remove(CONTENT_LENGTH);
    let body = match streamed {
        Some(body) => {
            if let Some(length) = &framing.content_length {
                headers.insert(CONTENT_LENGTH, length.clone());
            }
            body
        }
        None => {
            let bytes = state.body.clone().unwrap_or_default();
            if !bytes.is_empty() || framing.has_body {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            }
            full(bytes)
        }
    };

    let mut req = Request::new(body);
    *req.method_mut() = state.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Ok(req)
}
