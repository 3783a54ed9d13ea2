//! The request flow's pure helpers, kept beside [`super::handler`]: the access log's record of the
//! client's request, the request as plugins see it, early length checks, and how body failures
//! map to the client's or the upstream's error, and the upstream body parked for plugins.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request};

use super::body::BodyMeter;
use super::body::ProxyBody;
use super::error::{BoxError, ProxyError};
use super::headers::{self, X_REQUEST_ID};
use super::lazy_body::{Parked, ReadFailure};
use super::routing::{RouteEntry, RoutingTable};
use crate::access_log::AccessRecord;
use crate::chain::{RequestState, ResponseState};
use crate::header_map::is_only_value;
use crate::telemetry::TraceContext;

/// The access log's view of the request as the client sent it: raw path and query, and the
/// client address after the trusted-proxy rule.
pub(super) fn access_record<B>(
    table: &RoutingTable,
    peer: IpAddr,
    req: &Request<B>,
    request_id: &Arc<str>,
    trace_context: &TraceContext,
) -> AccessRecord {
    let client_ip = table.client_policy().origin(peer, req.headers()).client_ip;
    AccessRecord::new(
        req,
        request_id.clone(),
        trace_context.trace_id_hex_bytes(),
        client_ip,
        table.secret_query_params(),
    )
}

/// The request as plugins see it.
pub(super) fn request_state(
    parts: Parts,
    path: String,
    authority: Option<&str>,
    client_ip: IpAddr,
    route: &RouteEntry,
    request_id: Arc<str>,
    request_id_header: HeaderValue,
) -> RequestState {
    let mut headers = parts.headers;
    headers::strip_hop_by_hop(&mut headers);
    headers::strip_client_forwarding(&mut headers);
    // HTTP/2 carries the host in `:authority`: give plugins and the upstream one `Host`. Over
    // HTTP/1.1 it is usually the `Host` the client sent, already there.
    if let Some(authority) = authority
        && !is_only_value(&headers, &HOST, authority.as_bytes())
        && let Ok(value) = HeaderValue::from_str(authority)
    {
        headers.insert(HOST, value);
    }
    headers.insert(X_REQUEST_ID.clone(), request_id_header);
    RequestState {
        method: parts.method,
        path,
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: None,
        lazy_body: None,
        upstream_error: None,
        client_ip,
        route: route.name.clone(),
        request_id,
        context: Default::default(),
        trace: None,
        canary_versions: 0,
    }
}

pub(super) fn check_content_length(headers: &HeaderMap, limit: u64) -> Result<(), ProxyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(ProxyError::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}

pub(super) fn body_error(meter: &BodyMeter, limit: u64, error: BoxError) -> ProxyError {
    if meter.over_limit() {
        ProxyError::BodyTooLarge { limit }
    } else if let Some(timeout) = meter.stalled() {
        ProxyError::BodyTimeout { timeout }
    } else if meter.over_budget() {
        ProxyError::BufferBudgetExhausted
    } else {
        ProxyError::ClientBody(meter.client_error().map_or(error, Into::into))
    }
}

pub(super) fn upstream_body_error(
    route: &RouteEntry,
    target: &str,
    limit: u64,
    error: BoxError,
) -> ProxyError {
    let upstream = route.upstream.name().to_owned();
    if error.is::<http_body_util::LengthLimitError>() {
        ProxyError::UpstreamBodyTooLarge { upstream, limit }
    } else {
        ProxyError::Upstream {
            upstream,
            target: target.to_owned(),
            source: error,
        }
    }
}

/// The upstream's response body on its way to the client.
pub(super) enum Downstream {
    /// Buffered into the response state, or replaced by a plugin's reply.
    None,
    /// Streamed as it arrives.
    Stream(ProxyBody),
    /// Parked for a plugin that may read it (contract 0.2.0); from this target.
    Parked(Arc<Parked>, String),
}

/// The upstream's parked body after the response phase: streamed on when no plugin read it;
/// read past `limit` or broken, 502 whatever the plugins answered.
pub(super) fn unparked(
    route: &RouteEntry,
    limit: u64,
    response: &ResponseState,
    parked: &Parked,
    target: String,
) -> Result<Option<ProxyBody>, ProxyError> {
    if let Some(failure) = parked.failure() {
        let upstream = route.upstream.name().to_owned();
        return Err(match failure {
            ReadFailure::TooLarge => ProxyError::UpstreamBodyTooLarge { upstream, limit },
            ReadFailure::Broken => ProxyError::Upstream {
                upstream,
                target,
                source: "the response body broke off".into(),
            },
        });
    }
    let back = parked.take_back();
    Ok(back.filter(|_| response.body.is_none()))
}

pub(super) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
