//! [`Chain`] over loaded Wasm plugins: request phase in order, response phase in reverse over the
//! plugins whose request phase ran, log phase for everyone who asked. Failures follow each
//! plugin's `on_error`; `defer` releases the instance, sleeps and calls the same phase again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;

use super::bindings::{Action, ContractVersion, LogEntry as WitLogEntry, Reply as WitReply};
use super::canary::{Canary, Member};
use super::host_request::valid_status;
use super::host_state::FetchBudget;
use super::limits::{Limit, exceeded};
use super::plugin::{LoadedPlugin, PhaseCall};
use super::response_headers;
use crate::chain::{
    Chain, FailureKind, Flow, LogEntry, PluginFailure, Reply, RequestOutcome, RequestState,
    ResponseState,
};
use crate::config::OnError;

/// A route's chain of Wasm plugins.
#[derive(Debug, Clone)]
pub struct WasmChain {
    members: Arc<[Member]>,
    needs_request_body: bool,
    needs_response_body: bool,
    wants_log: bool,
    /// Some plugin has a response or log phase, where it may read the request again.
    reads_request_late: bool,
    /// Some plugin targets contract 0.2.0 (bodies on demand, upstream errors).
    v02: bool,
    max_defer: Duration,
}

impl WasmChain {
    /// A chain of these plugins, in request order.
    pub fn new(plugins: Vec<Arc<LoadedPlugin>>) -> Self {
        Self::with_members(plugins.into_iter().map(Member::from).collect())
    }

    /// A chain of these members (a plugin and, for some, a canary version), in request order.
    pub fn with_members(members: Vec<Member>) -> Self {
        let versions = || {
            members
                .iter()
                .flat_map(|m| std::iter::once(&m.stable).chain(m.canary.iter().map(|c| &c.plugin)))
        };
        let any = |f: fn(&LoadedPlugin) -> bool| versions().any(|p| f(p));
        let needs_request_body = any(|p| p.capabilities().request_body);
        let needs_response_body = any(|p| p.capabilities().response_body);
        let wants_log = any(|p| p.capabilities().log);
        let reads_request_late = any(|p| p.capabilities().response || p.capabilities().log);
        let v02 = any(|p| p.contract_version() == ContractVersion::V0_2);
        let max_defer = members
            .first()
            .map(|m| m.stable.rt.opts.max_defer)
            .unwrap_or(Duration::from_secs(30));
        Self {
            members: members.into(),
            needs_request_body,
            needs_response_body,
            wants_log,
            reads_request_late,
            v02,
            max_defer,
        }
    }

    /// The members, in request order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }
}

/// The version of member `i` that serves `req`: decided (and noted in the request's
/// `canary_versions`) the first time, read back in later phases. A member without a canary
/// costs one branch. Members past the 64th always serve their stable version.
fn version<'a>(
    m: &'a Member,
    i: usize,
    req: &mut RequestState,
    decide: bool,
) -> (&'a Arc<LoadedPlugin>, Option<(&'a Canary, bool)>) {
    let Some(c) = &m.canary else {
        return (&m.stable, None);
    };
    let bit = 1u64.checked_shl(i as u32).unwrap_or(0);
    let on = if decide {
        let on = bit != 0 && c.serves(req);
        if on {
            req.canary_versions |= bit;
        }
        on
    } else {
        req.canary_versions & bit != 0
    };
    (if on { &c.plugin } else { &m.stable }, Some((c, on)))
}

/// Turn a plugin's reply into one the proxy can send, or say why it cannot be (a 1xx status,
/// a bad header, more headers than `[limits]` allows).
fn to_reply(plugin: &LoadedPlugin, r: WitReply) -> Result<Reply, String> {
    let limits = &plugin.rt.opts.limits;
    let Some(status) = valid_status(r.status) else {
        exceeded(plugin.name(), Limit::Status);
        return Err(format!("reply status {} is not in 200..=599", r.status));
    };
    let bytes: usize = r.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if r.headers.len() > limits.max_header_count || bytes > limits.max_header_bytes {
        exceeded(plugin.name(), Limit::Headers);
        return Err(format!(
            "reply has {} headers of {bytes} bytes: at most {} headers and {} bytes are allowed",
            r.headers.len(),
            limits.max_header_count,
            limits.max_header_bytes
        ));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &r.headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("reply header name `{}` is invalid", name.escape_debug()))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| format!("reply header `{n}` has an invalid value"))?;
        headers
            .try_append(n, v)
            .map_err(|_| "reply has too many headers".to_owned())?;
    }
    Ok(Reply {
        status,
        headers,
        body: Bytes::from(r.body),
    })
}

/// The 503 answered when a request has been deferred for longer than allowed.
fn deferred_too_long(plugin: &str) -> Reply {
    let body = serde_json::json!({ "error": "deferred_too_long", "plugin": plugin }).to_string();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply {
        status: StatusCode::SERVICE_UNAVAILABLE,
        headers,
        body: Bytes::from(body),
    }
}

/// Apply a plugin's failure policy: fail-closed ends the request, fail-open logs and goes on.
/// A state failure was already judged by `on_state_error` and always ends the request.
fn policy(
    plugin: &LoadedPlugin,
    request_id: &str,
    failure: PluginFailure,
) -> Result<(), PluginFailure> {
    if failure.kind == FailureKind::StateUnavailable {
        return Err(failure);
    }
    match plugin.on_error() {
        OnError::FailClosed => Err(failure),
        OnError::FailOpen => {
            tracing::warn!(plugin = %failure.plugin, request_id, kind = failure.kind.as_str(), "fail-open, skipping: {}", failure.message);
            Ok(())
        }
    }
}

/// The defers one phase of one request took so far: how many, and since when.
#[derive(Debug, Default)]
struct Deferred {
    count: u32,
    since: Option<Instant>,
}

/// What one plugin's phase decided, after defers and failure policy.
enum Step {
    Continue,
    Respond(Reply),
}

impl WasmChain {
    /// Call one plugin's request or response phase until it stops deferring.
    async fn run_phase(
        &self,
        plugin: &LoadedPlugin,
        canary: Option<(&Canary, bool)>,
        req: &mut RequestState,
        mut resp: Option<&mut ResponseState>,
        deferred: &mut Deferred,
    ) -> Result<Step, PluginFailure> {
        let mut budget = FetchBudget::default();
        loop {
            let call = match resp.as_deref_mut() {
                Some(r) => PhaseCall::Response(r),
                None => PhaseCall::Request,
            };
            let span = tracing::debug_span!("plugin", plugin = %plugin.name(), phase = call.name());
            let started = canary.map(|_| Instant::now());
            // Wrapped only when the span records: `instrument` moves the call's future again.
            let result = if span.is_disabled() {
                plugin.call(req, call, &mut budget).await
            } else {
                plugin.call(req, call, &mut budget).instrument(span).await
            };
            if let (Some((c, on)), Some(started)) = (canary, started) {
                let failed = match &result {
                    Err(_) => true,
                    Ok(Some(Action::Respond(r))) => valid_status(r.status).is_none(),
                    Ok(_) => false,
                };
                c.record(on, started.elapsed(), failed);
            }
            let action = match result {
                Ok(Some(action)) => action,
                Ok(None) => return Ok(Step::Continue),
                Err(failure) => {
                    return policy(plugin, &req.request_id, failure).map(|()| Step::Continue);
                }
            };
            match action {
                Action::Continue => return Ok(Step::Continue),
                Action::Respond(reply) => {
                    return match to_reply(plugin, reply) {
                        Ok(reply) => Ok(Step::Respond(reply)),
                        Err(message) => {
                            let failure = plugin.failure(FailureKind::BadAction, message);
                            policy(plugin, &req.request_id, failure).map(|()| Step::Continue)
                        }
                    };
                }
                Action::Defer(ms) => {
                    let wait = Duration::from_millis(u64::from(ms));
                    let limits = &plugin.rt.opts.limits;
                    deferred.count += 1;
                    let started = *deferred.since.get_or_insert_with(Instant::now);
                    if deferred.count > limits.max_defers {
                        exceeded(plugin.name(), Limit::Defers);
                        return Ok(Step::Respond(deferred_too_long(plugin.name())));
                    }
                    // Real time, not the sum of the waits asked for: `defer(0)` in a loop
                    // still runs out.
                    if started.elapsed().saturating_add(wait) > self.max_defer {
                        return Ok(Step::Respond(deferred_too_long(plugin.name())));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn request_phase(&self, req: &mut RequestState) -> Result<RequestOutcome, PluginFailure> {
        let mut deferred = Deferred::default();
        for (i, member) in self.members.iter().enumerate() {
            let (plugin, canary) = version(member, i, req, true);
            if !plugin.capabilities().request {
                continue;
            }
            if let Step::Respond(reply) = self
                .run_phase(plugin, canary, req, None, &mut deferred)
                .await?
            {
                plugin.record_response(&req.route, reply.status.as_u16());
                return Ok(RequestOutcome {
                    ran: i,
                    flow: Flow::Respond(reply),
                });
            }
        }
        Ok(RequestOutcome {
            ran: self.members.len(),
            flow: Flow::Continue,
        })
    }

    /// The headers the request context asks for (`response.header.<name>`) go on the response
    /// first, so the plugins here see them. A `respond` here replaces the response (status,
    /// headers, body) and the remaining plugins still see it; the chain then answers
    /// `Flow::Respond` with the final response.
    async fn response_phase(
        &self,
        req: &mut RequestState,
        resp: &mut ResponseState,
        ran: usize,
        only_v02: bool,
    ) -> Result<Flow, PluginFailure> {
        if let Some(member) = self.members.first() {
            response_headers::apply(
                &req.context,
                &mut resp.headers,
                &member.stable.rt.opts.limits,
            );
        }
        let mut deferred = Deferred::default();
        let mut replaced = false;
        for (i, member) in self.members.iter().enumerate().take(ran).rev() {
            let (plugin, canary) = version(member, i, req, false);
            if !plugin.capabilities().response
                || (only_v02 && plugin.contract_version() != ContractVersion::V0_2)
            {
                continue;
            }
            if let Step::Respond(reply) = self
                .run_phase(plugin, canary, req, Some(resp), &mut deferred)
                .await?
            {
                resp.status = reply.status;
                resp.headers = reply.headers;
                resp.body = Some(reply.body);
                replaced = true;
            }
        }
        Ok(if replaced {
            Flow::Respond(Reply {
                status: resp.status,
                headers: resp.headers.clone(),
                body: resp.body.clone().unwrap_or_default(),
            })
        } else {
            Flow::Continue
        })
    }
}

impl Chain for WasmChain {
    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn needs_request_body(&self) -> bool {
        self.needs_request_body
    }

    fn needs_response_body(&self) -> bool {
        self.needs_response_body
    }

    fn wants_log(&self) -> bool {
        self.wants_log
    }

    fn reads_request_after_forward(&self) -> bool {
        self.reads_request_late
    }

    fn on_request<'a>(
        &'a self,
        req: &'a mut RequestState,
    ) -> BoxFuture<'a, Result<RequestOutcome, PluginFailure>> {
        Box::pin(self.request_phase(req))
    }

    fn on_response<'a>(
        &'a self,
        req: &'a mut RequestState,
        resp: &'a mut ResponseState,
        ran: usize,
    ) -> BoxFuture<'a, Result<Flow, PluginFailure>> {
        Box::pin(self.response_phase(req, resp, ran, false))
    }

    fn reads_bodies_on_demand(&self) -> bool {
        self.v02
    }

    fn hears_upstream_failures(&self) -> bool {
        self.v02
    }

    fn on_upstream_failure<'a>(
        &'a self,
        req: &'a mut RequestState,
        resp: &'a mut ResponseState,
        ran: usize,
    ) -> BoxFuture<'a, Result<Flow, PluginFailure>> {
        // 0.1.0 plugins never saw the gateway's own 502/504 and still do not.
        Box::pin(self.response_phase(req, resp, ran, true))
    }

    /// Each log plugin takes a slot of its bounded queue now; a plugin whose queue is full (its
    /// log calls are slower than the traffic) is skipped for this request, and that is counted.
    fn on_log(&self, mut req: RequestState, entry: LogEntry) -> BoxFuture<'static, ()> {
        let plugins: Vec<_> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| version(m, i, &mut req, false).0)
            .filter(|p| p.capabilities().log)
            .filter_map(|p| match Arc::clone(&p.log_slots).try_acquire_owned() {
                Ok(permit) => Some((Arc::clone(p), permit)),
                Err(_) => {
                    metrics::counter!("tollgate_plugin_log_dropped_total", "plugin" => p.name().to_string())
                        .increment(1);
                    None
                }
            })
            .collect();
        Box::pin(async move {
            let entry = WitLogEntry {
                route: req.route.to_string(),
                method: req.method.as_str().to_owned(),
                path: req.path.clone(),
                status: entry.status,
                client_ip: req.client_ip_text(),
                request_bytes: entry.request_bytes,
                response_bytes: entry.response_bytes,
                duration_micros: entry.duration_micros,
                upstream_micros: entry.upstream_micros,
                upstream: entry.upstream,
            };
            for (plugin, _permit) in &plugins {
                let span = tracing::debug_span!("plugin", plugin = %plugin.name(), phase = "log");
                let mut budget = FetchBudget::default();
                // Queued here (within the queue's bound) while log calls hold their share of
                // the instances, so requests always find the rest.
                let Ok(_instance_share) = plugin.log_instances.acquire().await else {
                    continue;
                };
                let call = plugin
                    .call(&mut req, PhaseCall::Log(&entry), &mut budget)
                    .instrument(span);
                if let Err(f) = call.await {
                    tracing::warn!(plugin = %f.plugin, kind = f.kind.as_str(), "log phase failed: {}", f.message);
                }
            }
        })
    }
}
