//! The request flow, in one place, as named phases on one per-request value ([`Exchange`]):
//! [`prepare`](Exchange::prepare) → [`route`](Exchange::route) →
//! [`request_phase`](Exchange::request_phase) → [`forward`](Exchange::forward) →
//! [`response_phase`](Exchange::response_phase) → [`finish`](Exchange::finish). Each step says
//! why it sits where it does; every failure is a [`ProxyError`], mapped to a response once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tracing::Instrument;

use super::body::{BodyMeter, CappedBody, Completion, ProxyBody};
use super::error::{BoxError, ProxyError};
use super::exchange_parts::{
    Downstream, access_record, body_error, check_content_length, micros, millis, request_state,
    unparked, upstream_body_error,
};
use super::exchange_trace::{self, Traced};
use super::headers::{self, X_REQUEST_ID};
use super::lazy_body::Parked;
use super::metrics;
use super::response::client_response;
use super::routing::{RouteEntry, RoutingTable};
use super::tally::Tally;
use super::upstream::balance::Pick;
use super::upstream::forward::{Client, Framing, StateHeaders, upstream_request};
use super::upstream::replay::{AttemptBodies, ReplaySource};
use super::upstream::{Clients, retry};
use super::upstream_failure;
use crate::access_log::{AccessLog, AccessRecord, Outcome as AccessOutcome};
use crate::chain::{Flow, LogEntry, RequestOutcome, RequestState, ResponseState};
use crate::path::normalize_path;
use crate::telemetry::{TraceContext, Tracer};
use crate::tls::ConnectionInfo;

/// Who hears of each request besides the client: each is optional and costs one branch unset.
pub struct Observers<'a> {
    /// The access log.
    pub access_log: Option<Arc<AccessLog>>,
    /// The trace exporter.
    pub tracer: Option<&'a Tracer>,
    /// The usage tally reported to a control plane.
    pub tally: Option<Arc<Tally>>,
}

/// Serve one request from the TCP peer `peer` on a connection described by `conn` (TLS or not:
/// set by the server, never from the request) against `table`, turning every failure into its
/// response.
pub async fn handle<B>(
    table: Arc<RoutingTable>,
    clients: &Clients,
    peer: IpAddr,
    conn: ConnectionInfo,
    req: Request<B>,
    observers: Observers<'_>,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let Observers {
        access_log,
        tracer,
        tally,
    } = observers;
    let mut exchange = Exchange::prepare(&table, clients, peer, &req, access_log, tracer);
    exchange.tally = tally;
    exchange.conn = conn;
    // One span per request at `debug`: with `RUST_LOG=debug` every line written while it runs
    // carries its ids; at the default level it costs nothing (plugins' own log lines name their
    // request either way).
    let span = tracing::debug_span!(
        "request",
        request_id = %exchange.request_id,
        trace_id = %exchange.trace_context.trace_id_hex(),
        method = %exchange.method,
        route = tracing::field::Empty,
    );
    // Wrapped only when the span records: `instrument` moves the whole request future once more.
    let result = if span.is_disabled() {
        exchange.run(req).await
    } else {
        exchange.run(req).instrument(span.clone()).await
    };
    if let Some(route) = exchange.route {
        span.record("route", route.name.as_ref());
    }
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            let _entered = span.enter();
            let request_id = &*exchange.request_id;
            tracing::debug!(%error, request_id, "request answered by the gateway");
            error.into_response()
        }
    };
    exchange.finish(response)
}

/// One request on its way through the gateway: what it learned so far, for the next phase,
/// metrics and the log phase once the body is sent.
struct Exchange<'t> {
    table: &'t RoutingTable,
    clients: &'t Clients,
    peer: IpAddr,
    /// The client's connection (TLS session, plain-HTTP policy); taken by routing.
    conn: ConnectionInfo,
    started: Instant,
    /// The client's method: it decides whether the response may have a body, whatever plugins do.
    method: Method,
    request_id: Arc<str>,
    /// The request id as a header value, built once for the plugins' view and the response.
    request_id_header: HeaderValue,
    /// The W3C trace this request joined or started; the upstream gets a child `traceparent`.
    trace_context: TraceContext,
    /// What a sampled request keeps for its trace (`[telemetry]`); `None` otherwise.
    traced: Option<Box<Traced>>,
    /// The access log and its record of the request as the client sent it. Boxed, like
    /// `log_state`: what only some requests carry does not widen every request's state, which
    /// is moved whole into the response body's completion hook.
    access: Option<Box<(Arc<AccessLog>, AccessRecord)>>,
    /// The usage tally, when following a control plane.
    tally: Option<Arc<Tally>>,
    /// The matched route, once routed.
    route: Option<&'t RouteEntry>,
    request_body: BodyMeter,
    upstream_target: Option<String>,
    upstream_time: Option<Duration>,
    /// The target that answered: in flight (for least-connections) until the body is done.
    in_flight: Option<Pick>,
    /// The final request state, kept when the chain wants the log phase.
    log_state: Option<Box<RequestState>>,
    /// The context key `consumer` after the chain, for the access log.
    consumer: Option<String>,
    /// The request context's `access_log.*` overrides, for the access log.
    log_context: HashMap<String, String>,
    /// The request body's share of `[limits] max_buffered_bytes`, held until the request ends.
    buffer: Option<super::budget::BufferCharge>,
}

/// What routing decided and what the later phases need of the client's request.
struct Routed<'t> {
    route: &'t RouteEntry,
    /// The client's connection and framing, for the forwarding headers.
    client: Client,
    state: RequestState,
}

/// The request phase's result: how many plugins ran, and the upstream-bound body when it streams.
struct Requested {
    ran: usize,
    flow: Flow,
    streamed: Option<ProxyBody>,
}

impl<'t> Exchange<'t> {
    /// Read what every later step needs before the flow consumes the request: ids, trace, and
    /// the access log's view of the client's request.
    fn prepare<B>(
        table: &'t RoutingTable,
        clients: &'t Clients,
        peer: IpAddr,
        req: &Request<B>,
        access_log: Option<Arc<AccessLog>>,
        tracer: Option<&Tracer>,
    ) -> Self {
        let (request_id, request_id_header) = headers::request_id(req.headers());
        let mut trace_context = TraceContext::from_headers(req.headers());
        let traced = Traced::sample(tracer, &mut trace_context);
        let access = access_log.map(|log| {
            let record = access_record(table, peer, req, &request_id, &trace_context);
            Box::new((log, record))
        });
        Self {
            table,
            clients,
            peer,
            conn: ConnectionInfo::default(),
            started: Instant::now(),
            method: req.method().clone(),
            request_id_header,
            request_id,
            trace_context,
            traced,
            access,
            tally: None,
            route: None,
            request_body: BodyMeter::default(),
            upstream_target: None,
            upstream_time: None,
            in_flight: None,
            log_state: None,
            consumer: None,
            log_context: HashMap::new(),
            buffer: None,
        }
    }

    /// The flow up to the response head. Errors are mapped by the caller, in one place.
    async fn run<B>(&mut self, req: Request<B>) -> Result<Response<ProxyBody>, ProxyError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut routed, body) = self.route(req)?;
        let result = self.proxy(&mut routed, body).await;
        self.keep_for_log(routed);
        result
    }

    /// Phases 6–9 for a routed request.
    async fn proxy<B>(
        &mut self,
        routed: &mut Routed<'t>,
        body: B,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let requested = self.request_phase(routed, body).await?;
        let (response, upstream_body) = match requested.flow {
            Flow::Respond(reply) => (
                ResponseState {
                    status: reply.status,
                    headers: reply.headers,
                    body: Some(reply.body),
                    ..ResponseState::default()
                },
                Downstream::None,
            ),
            Flow::Continue => match self.forward(routed, requested.streamed).await {
                Ok(forwarded) => forwarded,
                // The plugins that took something in their request phase hear of the failure.
                Err(e) => {
                    let chain = &routed.route.chain;
                    let state = &mut routed.state;
                    // Boxed: a cold path that would otherwise grow every request's future.
                    let answer =
                        upstream_failure::answer(chain, state, requested.ran, e, &self.method);
                    return Box::pin(answer).await;
                }
            },
        };
        self.response_phase(routed, response, upstream_body, requested.ran)
            .await
    }

    /// Phases 1–5: checks that cost little, routing, and the plugins' view of the request.
    fn route<B>(&mut self, req: Request<B>) -> Result<(Routed<'t>, B), ProxyError> {
        let table = self.table;
        let limits = table.limits();
        // 1. Normalise the path and check the host first: routing, plugins and the upstream must
        //    all see this one path and this one host.
        let path = normalize_path(req.uri().path())?;
        let authority = super::host::request_host(&req)?;
        //    Plain HTTP on a listener that wants HTTPS is redirected or refused before anything
        //    else (docs/tls.md). The connection info is set by the server, never from the request.
        let conn = std::mem::take(&mut self.conn);
        super::plain_http::check(&conn, &req, &path)?;
        // 2. Header limits before anything else reads headers, so oversized requests cost little.
        headers::check_limits(req.headers(), limits)?;
        //    `X_Consumer` next to `X-Consumer` smuggles identity past CGI-style upstreams: refuse.
        let policy = table.client_policy();
        policy.check_header_names(req.headers())?;
        // 3. A declared body over the limit is refused before routing and plugins spend work on it.
        check_content_length(req.headers(), limits.max_body_bytes)?;
        // 4. Route on the normalised path (404/405 here, before any plugin runs).
        let host = authority
            .as_deref()
            .map(super::host::route_host)
            .unwrap_or_default();
        let route = table.route(&host, &path, req.method())?;
        self.route = Some(route);
        //    Bodies read for plugins (up front, or on demand by a 0.2.0 plugin) count against the
        //    global buffer budget; a route whose plugins never read bodies streams uncharged.
        if route.chain.needs_request_body() || route.chain.reads_bodies_on_demand() {
            self.buffer = Some(table.buffer_budget().charge());
        }
        // 5. The client address (trusted proxies and X-Forwarded-For), read before the forwarding
        //    headers go; then the plugins' view of the request: hop-by-hop, client forwarding and
        //    identity headers removed, so only plugins can set identity.
        let origin = policy.origin(self.peer, req.headers());
        let (parts, body) = req.into_parts();
        let framing = Framing::of(&parts.headers);
        let mut state = request_state(
            parts,
            path,
            authority.as_deref(),
            origin.client_ip,
            route,
            self.request_id.clone(),
            self.request_id_header.clone(),
        );
        policy.strip_identity_headers(&mut state.headers);
        //    The verified client certificate (mTLS) is the only source of the `tls.client.*` keys.
        if let Some(identity) = conn.tls.as_ref().and_then(|t| t.client.as_ref()) {
            state
                .context
                .extend(identity.context().map(|(k, v)| (k.to_owned(), v)));
        }
        self.trace_context.apply(&mut state.headers);
        if let Some(traced) = &mut self.traced {
            traced.routed(&mut state, &host);
        }
        let routed = Routed {
            route,
            client: Client {
                origin,
                authority,
                tls: conn.tls.is_some(),
                framing,
            },
            state,
        };
        Ok((routed, body))
    }

    /// Phases 6–7: the body, capped while it streams and buffered only when a plugin asked for
    /// it; then the request phase in chain order, where a `respond` short-circuits the upstream.
    async fn request_phase<B>(
        &mut self,
        routed: &mut Routed<'t>,
        body: B,
    ) -> Result<Requested, ProxyError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let chain = &routed.route.chain;
        let body_limit = self.table.limits().max_body_bytes;
        // 6. Chunked bodies declare no size: the cap applies while the bytes stream.
        let meter = self.request_body.clone();
        let capped = CappedBody::new(body, body_limit, meter.clone());
        let capped = match &self.buffer {
            Some(charge) => capped.charged(charge.clone()),
            None => capped,
        };
        //    A 0.1.0 plugin that declared the body gets it buffered up front; a 0.2.0 plugin reads it
        //    when it calls `body()`, so a request refused before that is never buffered.
        let mut parked = None;
        let streamed = if chain.needs_request_body() {
            let collected = capped
                .collect()
                .await
                .map_err(|e| body_error(&meter, body_limit, e))?;
            routed.state.body = Some(collected.to_bytes());
            None
        } else if chain.reads_bodies_on_demand() {
            let body = Parked::new(capped.boxed_unsync(), None, "request");
            routed.state.lazy_body = Some(body.lazy());
            parked = Some(body);
            None
        } else {
            Some(capped.boxed_unsync())
        };
        // 7. Request phase, in chain order.
        let outcome = if chain.is_empty() {
            RequestOutcome {
                ran: 0,
                flow: Flow::Continue,
            }
        } else {
            chain.on_request(&mut routed.state).await?
        };
        //    Unread, the body streams on; read and over the cap (or broken), the client is
        //    answered for it whatever the plugins decided.
        let streamed = match parked {
            Some(parked) => {
                let state = &mut routed.state;
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
        Ok(Requested {
            ran: outcome.ran,
            flow: outcome.flow,
            streamed,
        })
    }

    /// Phase 8: the upstream, with retries as its policy allows; the response head is bounded by
    /// the request timeout, and its body buffered only when a plugin asked for it.
    async fn forward(
        &mut self,
        routed: &mut Routed<'t>,
        streamed: Option<ProxyBody>,
    ) -> Result<(ResponseState, Downstream), ProxyError> {
        let route = routed.route;
        let limits = self.table.limits();
        let body_limit = limits.max_body_bytes;
        let meter = self.request_body.clone();
        let client = self.clients.for_proxy(&route.upstream);
        let trace_context = self.trace_context;
        let sent_at = Instant::now();
        // Retries follow the method sent upstream, after any plugin rewrote it.
        let sent_method = routed.state.method.clone();
        let may_retry = retry::may_retry(&route.upstream, &sent_method);
        let mut body = AttemptBodies::new(streamed, may_retry);
        let state_headers = if may_retry || route.chain.reads_request_after_forward() {
            StateHeaders::Keep
        } else {
            StateHeaders::Take
        };
        let mut last_target = None;
        let Routed {
            client: from,
            state,
            ..
        } = routed;
        let replay = body.replay();
        let mut spans = state.trace.take();
        let result = retry::forward(
            &route.upstream,
            &client,
            &sent_method,
            &|| replay.as_ref().is_none_or(ReplaySource::replayable),
            &|| meter.over_limit(),
            |target| {
                let next_body = body.next_body();
                let mut upstream_req = upstream_request(
                    state,
                    from,
                    &route.upstream,
                    target,
                    next_body,
                    state_headers,
                )?;
                // The gateway's child `traceparent` wins over whatever a plugin left there.
                trace_context.apply(upstream_req.headers_mut());
                Ok(upstream_req)
            },
            |attempt| {
                let spans = spans.as_deref_mut();
                let name = route.upstream.name();
                exchange_trace::on_attempt(attempt, &mut last_target, spans, name);
            },
        )
        .await;
        state.trace = spans;
        self.upstream_target = last_target;
        self.upstream_time = Some(sent_at.elapsed());
        let forwarded = result.map_err(|e| match (meter.over_limit(), meter.stalled()) {
            (true, _) => ProxyError::BodyTooLarge { limit: body_limit },
            (false, Some(timeout)) => ProxyError::BodyTimeout { timeout },
            // The client's body failing mid-stream is the client's error (400), not the
            // upstream's (502); the upstream connection that got half of it is closed by the
            // client pool, never reused.
            (false, None) => match meter.client_error() {
                Some(reason) => ProxyError::ClientBody(reason.into()),
                None => e,
            },
        })?;
        let pick = &*self.in_flight.insert(forwarded.pick);
        let (mut head, incoming) = forwarded.response.into_parts();
        headers::strip_hop_by_hop(&mut head.headers);
        let mut response = ResponseState {
            status: head.status,
            headers: head.headers,
            ..ResponseState::default()
        };
        let limit = limits.max_response_body_bytes;
        if route.chain.reads_bodies_on_demand() && !route.chain.needs_response_body() {
            // Parked for a 0.2.0 plugin that may ask; streamed on when none does.
            let body = Parked::new(
                incoming.map_err(BoxError::from).boxed_unsync(),
                Some(limit),
                "response",
            );
            response.lazy_body = Some(body.lazy());
            let target = pick.addr().to_owned();
            return Ok((response, Downstream::Parked(body, target)));
        }
        if !route.chain.needs_response_body() {
            let body = incoming.map_err(BoxError::from).boxed_unsync();
            return Ok((response, Downstream::Stream(body)));
        }
        // Past the limit the upstream broke the contract.
        let collected = Limited::new(incoming, usize::try_from(limit).unwrap_or(usize::MAX))
            .collect()
            .await
            .map_err(|e| upstream_body_error(route, pick.addr(), limit, e))?;
        response.body = Some(collected.to_bytes());
        Ok((response, Downstream::None))
    }

    /// Phase 9: the response phase, in reverse over the plugins that ran; the upstream's framing
    /// is kept unless the body was buffered or replaced, when Content-Length is set from the bytes.
    async fn response_phase(
        &mut self,
        routed: &mut Routed<'t>,
        mut response: ResponseState,
        downstream: Downstream,
        ran: usize,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let upstream_length = response.headers.get(CONTENT_LENGTH).cloned();
        let chain = &routed.route.chain;
        let flow = if chain.is_empty() {
            Flow::Continue
        } else {
            chain
                .on_response(&mut routed.state, &mut response, ran)
                .await?
        };
        let mut upstream_body = match downstream {
            Downstream::None => None,
            Downstream::Stream(body) => Some(body),
            Downstream::Parked(parked, target) => {
                response.lazy_body = None;
                let limit = self.table.limits().max_response_body_bytes;
                unparked(routed.route, limit, &response, &parked, target)?
            }
        };
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
            &self.method,
        ))
    }

    /// What the access log and the log phase need of the request state after the chain.
    fn keep_for_log(&mut self, routed: Routed<'t>) {
        let mut state = routed.state;
        if let Some(traced) = &mut self.traced {
            traced.keep(&mut state);
        }
        self.consumer = state.context.get("consumer").cloned();
        for (key, value) in &state.context {
            if key.starts_with(crate::access_log::CONTEXT_PREFIX) {
                self.log_context.insert(key.clone(), value.clone());
            }
        }
        if routed.route.chain.wants_log() {
            self.log_state = Some(Box::new(state));
        }
    }

    /// Tag the response with its request id and arrange metrics and the log phase for when the
    /// body is done: after the client has it, off the latency path.
    fn finish(self, mut response: Response<ProxyBody>) -> Response<ProxyBody> {
        let request_id = self.request_id_header.clone();
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id);
        if let Some(deprecation) = self.route.and_then(|r| r.deprecation.as_deref()) {
            deprecation.apply(response.headers_mut());
        }
        let status = response.status();
        let route = self.route.map(|r| r.name.clone());
        let upstream_name = self
            .route
            .filter(|_| self.upstream_time.is_some())
            .map(|r| r.upstream.name().to_owned());
        let log = self
            .log_state
            .zip(self.route.map(|r| r.chain.clone()))
            .map(|(state, chain)| (chain, state));
        let Self {
            started,
            method,
            access,
            tally,
            request_body,
            upstream_target: upstream,
            upstream_time,
            in_flight,
            buffer,
            consumer,
            log_context,
            trace_context,
            traced,
            ..
        } = self;
        let on_done = move |sent: u64| {
            drop(in_flight);
            drop(buffer);
            let elapsed = started.elapsed();
            metrics::record_request(route.as_deref(), &method, status, elapsed);
            if let Some(tally) = tally {
                tally.record(
                    route.as_ref(),
                    consumer.as_deref(),
                    status.as_u16(),
                    elapsed,
                );
            }
            if let Some(traced) = traced {
                (*traced).finish(
                    trace_context,
                    started,
                    method.clone(),
                    route.as_deref(),
                    status,
                );
            }
            if let (Some(name), Some(took)) = (&upstream_name, upstream_time) {
                metrics::record_upstream(route.as_deref(), name, took);
            }
            if let Some(access) = access {
                let (sink, record) = &*access;
                let outcome = AccessOutcome {
                    route: route.as_deref(),
                    consumer: consumer.as_deref(),
                    status: status.as_u16(),
                    request_bytes: request_body.bytes(),
                    response_bytes: sent,
                    duration_ms: millis(elapsed),
                    upstream_ms: upstream_time.map(millis),
                    upstream: upstream_name.as_deref(),
                    upstream_target: upstream.as_deref(),
                };
                sink.send(record.line(&outcome, &log_context));
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
                super::drain::spawn_log(chain.on_log(*state, entry));
            }
        };
        response.map(|body| Completion::new(body, on_done).boxed_unsync())
    }
}
