//! The request flow, in one place, step by step. Each step says why it sits where it does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::body::{BodyMeter, CappedBody, Completion, ProxyBody, full};
use super::client::Origin;
use super::error::{BoxError, ProxyError};
use super::headers::{self, X_REQUEST_ID};
use super::metrics;
use super::routing::{RouteEntry, RoutingTable};
use super::upstream::{self, Clients};
use crate::chain::{Chain, Flow, LogEntry, RequestState, ResponseState};
use crate::path::normalize_path;

/// What the flow learned along the way, for metrics and the log phase once the body is sent.
#[derive(Default)]
struct Trace {
    route: Option<Arc<str>>,
    /// The chain and final request state, present when the chain wants the log phase.
    log: Option<(Arc<dyn Chain>, RequestState)>,
    request_body: BodyMeter,
    upstream: Option<String>,
    upstream_time: Option<Duration>,
}

/// Serve one request from the TCP peer `peer` against `table`, turning every failure into its
/// response.
pub async fn handle<B>(
    table: Arc<RoutingTable>,
    clients: &Clients,
    peer: IpAddr,
    req: Request<B>,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = headers::request_id(req.headers());
    let mut trace = Trace::default();
    let response = match run(&table, clients, peer, req, &request_id, &mut trace).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, request_id, "request answered by the gateway");
            error.into_response()
        }
    };
    finish(response, trace, method, request_id, started)
}

/// The flow up to the response head. Errors are mapped by the caller, in one place.
async fn run<B>(
    table: &RoutingTable,
    clients: &Clients,
    peer: IpAddr,
    req: Request<B>,
    request_id: &str,
    trace: &mut Trace,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let limits = table.limits();
    // 1. Normalise the path first: routing, plugins and the upstream must all see this one path.
    let path = normalize_path(req.uri().path())?;
    // 2. Header limits before anything else reads headers, so oversized requests cost little.
    headers::check_limits(req.headers(), limits)?;
    //    `X_Consumer` next to `X-Consumer` smuggles identity past CGI-style upstreams: refuse.
    let policy = table.client_policy();
    policy.check_header_names(req.headers())?;
    // 3. A declared body over the limit is refused before routing and plugins spend work on it.
    check_content_length(req.headers(), limits.max_body_bytes)?;
    // 4. Route on the normalised path (404/405 here, before any plugin runs).
    let authority = headers::request_authority(&req);
    let host = authority
        .as_deref()
        .map(headers::route_host)
        .unwrap_or_default();
    let route = table.route(&host, &path, req.method())?;
    trace.route = Some(route.name.clone());
    // 5. The client address (trusted proxies and X-Forwarded-For), read before the forwarding
    //    headers go; then the plugins' view of the request: hop-by-hop, client forwarding and
    //    identity headers removed, so only plugins can set identity.
    let origin = policy.origin(peer, req.headers());
    let (parts, body) = req.into_parts();
    let framing = Framing::of(&parts.headers);
    let mut state = request_state(
        parts,
        path,
        authority.as_deref(),
        origin.client_ip,
        route,
        request_id,
    );
    policy.strip_identity_headers(&mut state.headers);
    // 6.–9. Body, chain, upstream, response: the rest of the flow, with the state kept for the log.
    let result = routed(
        route,
        clients,
        &origin,
        &framing,
        body,
        &mut state,
        authority.as_deref(),
        limits,
        trace,
    )
    .await;
    if route.chain.wants_log() {
        trace.log = Some((route.chain.clone(), state));
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn routed<B>(
    route: &RouteEntry,
    clients: &Clients,
    origin: &Origin,
    framing: &Framing,
    body: B,
    state: &mut RequestState,
    authority: Option<&str>,
    limits: &crate::config::Limits,
    trace: &mut Trace,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let chain = &route.chain;
    // The client's method decides whether the response may have a body, whatever plugins do.
    let client_method = state.method.clone();
    let body_limit = limits.max_body_bytes;
    // 6. Cap the body while it streams (chunked bodies declare no size); buffer it only when a
    //    plugin asked for it, so the common case streams.
    let meter = trace.request_body.clone();
    let capped = CappedBody::new(body, body_limit, meter.clone());
    let streamed = if chain.needs_request_body() {
        let collected = capped
            .collect()
            .await
            .map_err(|e| body_error(&meter, body_limit, e))?;
        state.body = Some(collected.to_bytes());
        None
    } else {
        Some(capped.boxed_unsync())
    };

    // 7. Request phase, in chain order; a `respond` short-circuits the upstream.
    let outcome = chain.on_request(state).await?;
    let ran = outcome.ran;

    // 8. Upstream, unless a plugin answered. The response head is bounded by the request timeout.
    let (mut response, upstream_body) = match outcome.flow {
        Flow::Respond(reply) => (
            ResponseState {
                status: reply.status,
                headers: reply.headers,
                body: Some(reply.body),
            },
            None,
        ),
        Flow::Continue => {
            let target = route.upstream.pick().to_owned();
            let upstream_req =
                upstream_request(state, origin, framing, &target, authority, streamed)?;
            let client = clients.get(route.upstream.connect_timeout());
            let sent_at = Instant::now();
            trace.upstream = Some(target.clone());
            let result = upstream::send(&client, &route.upstream, &target, upstream_req).await;
            trace.upstream_time = Some(sent_at.elapsed());
            let upstream_resp =
                result.map_err(|e| match (meter.over_limit(), meter.stalled()) {
                    (true, _) => ProxyError::BodyTooLarge { limit: body_limit },
                    (false, Some(timeout)) => ProxyError::BodyTimeout { timeout },
                    (false, None) => e,
                })?;
            let (mut head, incoming) = upstream_resp.into_parts();
            headers::strip_hop_by_hop(&mut head.headers);
            let mut response = ResponseState {
                status: head.status,
                headers: head.headers,
                body: None,
            };
            // Buffer only for plugins that asked; past the limit the upstream broke the contract.
            if chain.needs_response_body() {
                let limit = limits.max_response_body_bytes;
                let collected =
                    Limited::new(incoming, usize::try_from(limit).unwrap_or(usize::MAX))
                        .collect()
                        .await
                        .map_err(|e| upstream_body_error(route, &target, limit, e))?;
                response.body = Some(collected.to_bytes());
                (response, None)
            } else {
                (response, Some(incoming))
            }
        }
    };

    // 9. Response phase, in reverse over the plugins that ran; the upstream's framing is kept
    //    unless the body was buffered or replaced, when Content-Length is set from the bytes.
    let upstream_length = response.headers.get(CONTENT_LENGTH).cloned();
    let mut upstream_body = upstream_body;
    if let Flow::Respond(reply) = chain.on_response(state, &mut response, ran).await? {
        response = ResponseState {
            status: reply.status,
            headers: reply.headers,
            body: Some(reply.body),
        };
        upstream_body = None;
    }
    Ok(client_response(
        response,
        upstream_body,
        upstream_length,
        &client_method,
    ))
}

/// The request as plugins see it.
fn request_state(
    parts: Parts,
    path: String,
    authority: Option<&str>,
    client_ip: IpAddr,
    route: &RouteEntry,
    request_id: &str,
) -> RequestState {
    let mut headers = parts.headers;
    headers::strip_hop_by_hop(&mut headers);
    headers::strip_client_forwarding(&mut headers);
    // HTTP/2 carries the host in `:authority`: give plugins and the upstream one `Host`.
    if let Some(value) = authority.and_then(|a| HeaderValue::from_str(a).ok()) {
        headers.insert(HOST, value);
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
    RequestState {
        method: parts.method,
        path,
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: None,
        client_ip,
        route: route.name.clone(),
        request_id: Arc::from(request_id),
        context: HashMap::new(),
    }
}

/// The request sent upstream: the state after the chain, the gateway's forwarding headers set
/// last, and framing decided by the gateway, never by a plugin.
fn upstream_request(
    state: &mut RequestState,
    origin: &Origin,
    framing: &Framing,
    target: &str,
    authority: Option<&str>,
    streamed: Option<ProxyBody>,
) -> Result<Request<ProxyBody>, ProxyError> {
    // A plugin may rewrite the path; the rewritten path obeys the same rule.
    let path = normalize_path(&state.path)
        .map_err(|e| ProxyError::InvalidRewrite(format!("rewritten path: {e}")))?;
    state.path = path;
    let mut uri = format!("http://{target}{}", state.path);
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

fn client_response(
    mut response: ResponseState,
    upstream_body: Option<hyper::body::Incoming>,
    upstream_length: Option<HeaderValue>,
    method: &Method,
) -> Response<ProxyBody> {
    // Plugins may have added connection-level headers; they never reach the client.
    headers::strip_hop_by_hop(&mut response.headers);
    let no_body = *method == Method::HEAD
        || response.status.is_informational()
        || response.status == StatusCode::NO_CONTENT
        || response.status == StatusCode::NOT_MODIFIED;
    let body = match (upstream_body, response.body) {
        (Some(incoming), _) => {
            restore_length(&mut response.headers, upstream_length);
            incoming.map_err(BoxError::from).boxed_unsync()
        }
        (None, Some(bytes)) => {
            if !no_body {
                response
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            }
            full(bytes)
        }
        (None, None) => {
            if !no_body {
                response
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(0));
            }
            full(Bytes::new())
        }
    };
    let mut out = Response::new(body);
    *out.status_mut() = response.status;
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

fn check_content_length(headers: &HeaderMap, limit: u64) -> Result<(), ProxyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(ProxyError::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}

fn body_error(meter: &BodyMeter, limit: u64, error: BoxError) -> ProxyError {
    if meter.over_limit() {
        ProxyError::BodyTooLarge { limit }
    } else if let Some(timeout) = meter.stalled() {
        ProxyError::BodyTimeout { timeout }
    } else {
        ProxyError::ClientBody(error)
    }
}

fn upstream_body_error(
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

/// How the client framed its body, remembered before its headers become the plugins' to change.
struct Framing {
    content_length: Option<HeaderValue>,
    has_body: bool,
}

impl Framing {
    fn of(headers: &HeaderMap) -> Self {
        let content_length = headers.get(CONTENT_LENGTH).cloned();
        let has_body =
            content_length.is_some() || headers.contains_key(http::header::TRANSFER_ENCODING);
        Self {
            content_length,
            has_body,
        }
    }
}

/// Tag the response with its request id and arrange metrics and the log phase for when the
/// body is done: after the client has it, off the latency path.
fn finish(
    mut response: Response<ProxyBody>,
    trace: Trace,
    method: Method,
    request_id: String,
    started: Instant,
) -> Response<ProxyBody> {
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let status = response.status();
    let Trace {
        route,
        log,
        request_body,
        upstream,
        upstream_time,
    } = trace;
    let on_done = Box::new(move |sent: u64| {
        let elapsed = started.elapsed();
        metrics::record_request(route.as_deref(), &method, status, elapsed);
        if let Some((chain, state)) = log {
            let entry = LogEntry {
                status: status.as_u16(),
                request_bytes: request_body.bytes(),
                response_bytes: sent,
                duration_micros: micros(elapsed),
                upstream_micros: upstream_time.map(micros),
                upstream,
            };
            // Tracked, so that shutdown waits for the log phase too.
            super::drain::spawn_log(chain.on_log(state, entry));
        }
    });
    response.map(|body| Completion::new(body, on_done).boxed_unsync())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
