//! The request a target receives: the state after the request phase, the gateway's forwarding
//! headers set last (`X-Forwarded-For`, `-Host`, `-Proto`: `https` when the client came over TLS),
//! `cookie` fields joined into one (HTTP/2 clients send one field per cookie; HTTP/1.1 upstreams
//! expect one header, RFC 9113 §8.2.3), and framing decided by the gateway from what the client
//! sent, never by a plugin.

use http::header::{CONTENT_LENGTH, COOKIE};
use http::{HeaderMap, HeaderValue, Request, Uri, Version};

use super::pool::UpstreamPool;
use crate::chain::RequestState;
use crate::header_map::is_only_value;
use crate::path::{is_normalized, normalize_path};
use crate::proxy::body::{ProxyBody, full};
use crate::proxy::client::Origin;
use crate::proxy::error::ProxyError;
use crate::proxy::headers::{self, X_FORWARDED_PROTO, X_REQUEST_ID};

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

/// What the forwarding headers say about the client's connection.
#[derive(Debug)]
pub struct Client {
    /// The client address (trusted proxies applied) and the forwarded chain.
    pub origin: Origin,
    /// The authority the client asked for (`Host` or `:authority`).
    pub authority: Option<String>,
    /// The client came over TLS.
    pub tls: bool,
    /// How the client framed its body.
    pub framing: Framing,
}

/// What becomes of the request state's headers when the upstream request is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateHeaders {
    /// Read again later (another attempt, a plugin's response or log phase): send a copy.
    Keep,
    /// Not read again: the upstream request takes them, saving the copy and its allocations.
    Take,
}

/// The request for `target` of `pool`. `streamed` is the client's body when it was not
/// buffered (each attempt gets its own); otherwise the buffered body (or none) is sent.
pub fn upstream_request(
    state: &mut RequestState,
    client: &Client,
    pool: &UpstreamPool,
    target: &str,
    streamed: Option<ProxyBody>,
    state_headers: StateHeaders,
) -> Result<Request<ProxyBody>, ProxyError> {
    let (origin, framing) = (&client.origin, &client.framing);
    // A plugin may rewrite the path; the rewritten path obeys the same rule.
    if !is_normalized(&state.path) {
        state.path = normalize_path(&state.path)
            .map_err(|e| ProxyError::InvalidRewrite(format!("rewritten path: {e}")))?;
    }
    let query = state.query.as_deref();
    let scheme = pool.scheme();
    let length =
        scheme.len() + 3 + target.len() + state.path.len() + query.map_or(0, |q| q.len() + 1);
    let mut uri = String::with_capacity(length);
    for part in [scheme, "://", target, &state.path] {
        uri.push_str(part);
    }
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    // From the `String`, the URI keeps its buffer; `parse` would copy it.
    let uri =
        Uri::try_from(uri).map_err(|e| ProxyError::InvalidRewrite(format!("upstream URI: {e}")))?;

    let mut headers = match state_headers {
        StateHeaders::Keep => state.headers.clone(),
        StateHeaders::Take => std::mem::take(&mut state.headers),
    };
    headers::strip_hop_by_hop(&mut headers);
    headers::set_forwarding(
        &mut headers,
        origin.peer,
        origin.forwarded_chain.as_deref(),
        client.authority.as_deref(),
    );
    if client.tls {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
    }
    join_cookies(&mut headers);
    // The request id the plugins saw is already there unless a plugin changed it.
    if !is_only_value(&headers, &X_REQUEST_ID, state.request_id.as_bytes())
        && let Ok(value) = HeaderValue::from_str(&state.request_id)
    {
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

/// One `cookie` header from several fields, joined with `; ` (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    let mut fields = headers.get_all(COOKIE).iter();
    if fields.next().is_none() || fields.next().is_none() {
        return;
    }
    let mut joined = Vec::new();
    for value in headers.get_all(COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    // The parts were valid header values, and so is their join with `; `.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_fields_are_joined_in_order() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1"));
        join_cookies(&mut headers);
        assert_eq!(headers.get_all(COOKIE).iter().count(), 1);
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        headers.append(COOKIE, HeaderValue::from_static("c=3"));
        join_cookies(&mut headers);
        let all: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(all, ["a=1; b=2; c=3"]);
    }
}
