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

use super::balance::Pick;
use super::body::{BodyMeter, CappedBody, Completion, ProxyBody, full};
use super::client::Origin;
use super::error::{BoxError, ProxyError};
use super::headers::{self, X_REQUEST_ID};
use super::lazy_body::{Parked, ReadFailure};
use super::metrics;
use super::retry;
use super::routing::{RouteEntry, RoutingTable};
use super::upstream::Clients;
use crate::access_log::{AccessLog, AccessRecord};
use crate::chain::{Chain, Flow, LogEntry, RequestState, ResponseState};
use crate::path::normalize_path;
use crate::telemetry::TraceContext;
use crate::tls::ConnectionInfo;
use tracing::Instrument;

/// What the flow learned along the way, for metrics and the log phase once the body is sent.
#[derive(Default)]
struct Trace {
    route: Option<Arc<str>>,
    /// The chain and final request state, present when the chain wants the log phase.
    log: Option<(Arc<dyn Chain>, RequestState)>,
    request_body: BodyMeter,
    upstream: Option<String>,
    upstream_name: Option<String>,
    upstream_time: Option<Duration>,
    /// The target that answered: in flight (for least-connections) until the body is done.
    in_flight: Option<Pick>,
    /// The W3C trace this request joined or started; the upstream gets a child `traceparent`.
    trace_context: Option<TraceContext>,
    /// The context key `consumer` after the chain, for the access log.
    consumer: Option<String>,
    /// The request context's `access_log.*` overrides, for the access log.
    log_context: HashMap<String, String>,
}

/// Serve one request from the TCP peer `peer` against `table`, turning every failure into its
/// response.
pub async fn handle<B>(
    table: Arc<RoutingTable>,
    clients: &Clients,
    peer: IpAddr,
    req: Request<B>,
    access_log: Option<Arc<AccessLog>>,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = headers::request_id(req.headers());
    let trace_context = TraceContext::from_headers(req.headers());
    // What the access log says about the client's request, read before the flow consumes it.
    let record = access_log
        .as_ref()
        .map(|_| access_record(&table, peer, &req, &request_id, &trace_context));
    let mut trace = Trace {
        trace_context: Some(trace_context),
        ..Trace::default()
    };
    // One span per request: log lines written while it runs (plugins' included) carry its ids.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = %trace_context.trace_id_hex(),
        method = %method,
        route = tracing::field::Empty,
    );
    let result = run(&table, clients, peer, req, &request_id, &mut trace)
        .instrument(span.clone())
        .await;
    if let Some(route) = &trace.route {
        span.record("route", route.as_ref());
    }
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            let _entered = span.enter();
            tracing::debug!(%error, request_id, "request answered by the gateway");
            error.into_response()
        }
    };
    let log = access_log.zip(record);
    finish(response, trace, method, request_id, started, log)
}

/// The access log's view of the request as the client sent it: raw path and query, and the
/// client address after the trusted-proxy rule.
fn access_record<B>(
    table: &RoutingTable,
    peer: IpAddr,
    req: &Request<B>,
    request_id: &str,
    trace_context: &TraceContext,
) -> AccessRecord {
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    AccessRecord {
        timestamp: crate::access_log::now_rfc3339(),
        request_id: request_id.to_owned(),
        trace_id: trace_context.trace_id_hex(),
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        client_ip: table
            .client_policy()
            .origin(peer, req.headers())
            .client_ip
            .to_string(),
        user_agent: header(http::header::USER_AGENT),
        referer: header(http::header::REFERER),
        ..AccessRecord::default()
    }
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
    //    Plain HTTP on a listener that wants HTTPS is redirected or refused before anything else
    //    (docs/tls.md). The connection info is set by the server, never from the request.
    let conn = req
        .extensions()
        .get::<ConnectionInfo>()
        .cloned()
        .unwrap_or_default();
    super::plain_http::check(&conn, &req, &path)?;
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
    //    The verified client certificate (mTLS) is the only source of the `tls.client.*` keys.
    if let Some(identity) = conn.tls.as_ref().and_then(|t| t.client.as_ref()) {
        state
            .context
            .extend(identity.context().map(|(k, v)| (k.to_owned(), v)));
    }
    if let Some(trace_context) = &trace.trace_context {
        trace_context.apply(&mut state.headers);
    }
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
    trace.consumer = state.context.get("consumer").cloned();
    for (key, value) in &state.context {
        if key.starts_with(crate::access_log::CONTEXT_PREFIX) {
            trace.log_context.insert(key.clone(), value.clone());
        }
    }
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
    //    A 0.1.0 plugin that declared the body gets it buffered up front; a 0.2.0 plugin reads it
    //    when it calls `body()`, so a request refused before that is never buffered.
    let mut parked = None;
    let streamed = if chain.needs_request_body() {
        let collected = capped
            .collect()
            .await
            .map_err(|e| body_error(&meter, body_limit, e))?;
        state.body = Some(collected.to_bytes());
        None
    } else if chain.reads_bodies_on_demand() {
        let body = Parked::new(capped.boxed_unsync(), None, "request");
        state.lazy_body = Some(body.lazy());
        parked = Some(body);
        None
    } else {
        Some(capped.boxed_unsync())
    };

    // 7. Request phase, in chain order; a `respond` short-circuits the upstream.
    let outcome = chain.on_request(state).await?;
    let ran = outcome.ran;
    //    Unread, the body streams on; read and over the cap (or broken), the client is answered
    //    for it whatever the plugins decided.
    let streamed = match parked {
        Some(parked) => {
            state.lazy_body = None;
            let back = parked.take_back();
            if back.is_none() && state.body.is_none() {
                let e: BoxError = "the request body could not be read".into();
                return Err(body_error(&meter, body_limit, e));
            }
            if meter.over_limit() {
                return Err(ProxyError::BodyTooLarge { limit: body_limit });
            }
            back.filter(|_| state.body.is_none())
        }
        None => streamed,
    };

    // 8. Upstream, unless a plugin answered. The response head is bounded by the request timeout.
    let mut response_parked = None;
    let (mut response, upstream_body) = match outcome.flow {
        Flow::Respond(reply) => (
            ResponseState {
                status: reply.status,
                headers: reply.headers,
                body: Some(reply.body),
                ..ResponseState::default()
            },
            None,
        ),
        Flow::Continue => {
            let client = clients.get(&route.upstream);
            let trace_context = trace.trace_context;
            let sent_at = Instant::now();
            // A later attempt (retry) can only resend a body that was buffered, or none.
            let replayable = streamed.is_none() || !framing.has_body;
            let mut streamed = streamed;
            let mut last_target = None;
            // Retries follow the method sent upstream, after any plugin rewrote it.
            let sent_method = state.method.clone();
            let result = retry::forward(
                &route.upstream,
                &client,
                &sent_method,
                replayable,
                &|| meter.over_limit(),
                |target| {
                    let mut upstream_req = upstream_request(
                        state,
                        origin,
                        framing,
                        &route.upstream,
                        target,
                        authority,
                        streamed.take(),
                    )?;
                    // The gateway's child `traceparent` wins over whatever a plugin left there.
                    if let Some(trace_context) = &trace_context {
                        trace_context.apply(upstream_req.headers_mut());
                    }
                    Ok(upstream_req)
                },
                |target| last_target = Some(target.to_owned()),
            )
            .await;
            trace.upstream = last_target;
            trace.upstream_name = Some(route.upstream.name().to_owned());
            trace.upstream_time = Some(sent_at.elapsed());
            let forwarded = match result.map_err(|e| match (meter.over_limit(), meter.stalled()) {
                (true, _) => ProxyError::BodyTooLarge { limit: body_limit },
                (false, Some(timeout)) => ProxyError::BodyTimeout { timeout },
                (false, None) => e,
            }) {
                Ok(forwarded) => forwarded,
                // The plugins that took something in their request phase hear of the failure.
                Err(e) => return upstream_failed(chain, state, ran, e, &client_method).await,
            };
            let target = forwarded.pick.addr().to_owned();
            trace.in_flight = Some(forwarded.pick);
            let (mut head, incoming) = forwarded.response.into_parts();
            headers::strip_hop_by_hop(&mut head.headers);
            let mut response = ResponseState {
                status: head.status,
                headers: head.headers,
                ..ResponseState::default()
            };
            // Buffer only for plugins that asked (0.1.0), or park it for one that may ask (0.2.0);
            // past the limit the upstream broke the contract.
            let limit = limits.max_response_body_bytes;
            if chain.needs_response_body() {
                let collected =
                    Limited::new(incoming, usize::try_from(limit).unwrap_or(usize::MAX))
                        .collect()
                        .await
                        .map_err(|e| upstream_body_error(route, &target, limit, e))?;
                response.body = Some(collected.to_bytes());
                (response, None)
            } else if chain.reads_bodies_on_demand() {
                let body = Parked::new(
                    incoming.map_err(BoxError::from).boxed_unsync(),
                    Some(limit),
                    "response",
                );
                response.lazy_body = Some(body.lazy());
                response_parked = Some((body, target));
                (response, None)
            } else {
                (
                    response,
                    Some(incoming.map_err(BoxError::from).boxed_unsync()),
                )
            }
        }
    };

    // 9. Response phase, in reverse over the plugins that ran; the upstream's framing is kept
    //    unless the body was buffered or replaced, when Content-Length is set from the bytes.
    let upstream_length = response.headers.get(CONTENT_LENGTH).cloned();
    let mut upstream_body = upstream_body;
    let flow = chain.on_response(state, &mut response, ran).await?;
    if let Some((parked, target)) = response_parked {
        // Read past the limit or broken: 502, whatever the plugins answered. Unread: the
        // upstream's body streams on.
        response.lazy_body = None;
        if let Some(failure) = parked.failure() {
            let limit = limits.max_response_body_bytes;
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
        if response.body.is_none() {
            upstream_body = back;
        }
    }
    if let Flow::Respond(reply) = flow {
        response = ResponseState {
            status: reply.status,
            headers: reply.headers,
            body: Some(reply.body),
            ..ResponseState::default()
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

/// The upstream failed and the gateway answers itself: the response phase of the plugins that
/// ran (0.2.0) sees the gateway's error response with `upstream-error` set, and may change it.
async fn upstream_failed(
    chain: &Arc<dyn Chain>,
    state: &mut RequestState,
    ran: usize,
    error: ProxyError,
    client_method: &Method,
) -> Result<Response<ProxyBody>, ProxyError> {
    let failure = match super::upstream_failure::of(&error) {
        Some(failure) if chain.hears_upstream_failures() => failure,
        _ => return Err(error),
    };
    tracing::debug!(%error, kind = failure.kind.as_str(), request_sent = failure.request_sent, "upstream failed");
    state.upstream_error = Some(failure.clone());
    let (head, body) = error.into_response().into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut response = ResponseState {
        status: head.status,
        headers: head.headers,
        body: Some(body),
        upstream_error: Some(failure),
        ..ResponseState::default()
    };
    if let Flow::Respond(reply) = chain.on_upstream_failure(state, &mut response, ran).await? {
        response.status = reply.status;
        response.headers = reply.headers;
        response.body = Some(reply.body);
    }
    Ok(client_response(response, None, None, client_method))
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
        lazy_body: None,
        upstream_error: None,
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
    pool: &super::upstream::UpstreamPool,
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

fn client_response(
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
    access_log: Option<(Arc<AccessLog>, AccessRecord)>,
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
        upstream_name,
        upstream_time,
        in_flight,
        trace_context: _,
        consumer,
        log_context,
    } = trace;
    let on_done = Box::new(move |sent: u64| {
        drop(in_flight);
        let elapsed = started.elapsed();
        metrics::record_request(route.as_deref(), &method, status, elapsed);
        if let (Some(name), Some(took)) = (&upstream_name, upstream_time) {
            metrics::record_upstream(route.as_deref(), name, took);
        }
        if let Some((sink, mut record)) = access_log {
            record.route = route.as_deref().map(str::to_owned);
            record.consumer = consumer;
            record.status = status.as_u16();
            record.request_bytes = request_body.bytes();
            record.response_bytes = sent;
            record.duration_ms = millis(elapsed);
            record.upstream_ms = upstream_time.map(millis);
            record.upstream = upstream_name;
            record.upstream_target = upstream.clone();
            record.apply_overrides(&log_context);
            sink.send(record);
        }
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

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
