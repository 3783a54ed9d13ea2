//! The request flow's part in trace export (`[telemetry]`): a sampled request carries a
//! [`Traced`] from `prepare` to the end of its response body, gathering what its spans need; a
//! request that is not sampled carries nothing.

use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use http::{Method, StatusCode};

use super::upstream::retry::Attempt;
use crate::chain::RequestState;
use crate::telemetry::{FinishedRequest, SpanRecorder, TraceContext, Tracer};

/// What a sampled request keeps for its trace.
#[derive(Debug)]
pub(super) struct Traced {
    tracer: Tracer,
    path: Option<String>,
    server_address: Option<String>,
    client_address: Option<IpAddr>,
    /// The plugin and upstream spans, back from the request state after the chain.
    spans: Option<Box<SpanRecorder>>,
}

impl Traced {
    /// `Some` when `tracer` samples this request (the context's sampled flag is set to match).
    /// Boxed: the exchange of a request that is not traced stays one pointer larger.
    pub(super) fn sample(tracer: Option<&Tracer>, ctx: &mut TraceContext) -> Option<Box<Self>> {
        let tracer = tracer?;
        tracer.sample(ctx).then(|| {
            Box::new(Self {
                tracer: tracer.clone(),
                path: None,
                server_address: None,
                client_address: None,
                spans: None,
            })
        })
    }

    /// Routed: remember the path, host and client, and give the chain a recorder.
    pub(super) fn routed(&mut self, state: &mut RequestState, host: &str) {
        self.path = Some(state.path.clone());
        self.server_address = (!host.is_empty()).then(|| host.to_owned());
        self.client_address = Some(state.client_ip);
        state.trace = Some(Box::default());
    }

    /// The chain is done with the request state: keep its spans.
    pub(super) fn keep(&mut self, state: &mut RequestState) {
        self.spans = state.trace.take();
    }

    /// The response body is done: queue the request's spans for export.
    pub(super) fn finish(
        self,
        context: TraceContext,
        started: Instant,
        method: Method,
        route: Option<&str>,
        status: StatusCode,
    ) {
        self.tracer.send(FinishedRequest {
            context,
            started,
            ended: Instant::now(),
            ended_wall: SystemTime::now(),
            method,
            route: route.map(str::to_owned),
            path: self.path,
            status: status.as_u16(),
            server_address: self.server_address,
            client_address: self.client_address,
            spans: self.spans.map(|s| *s).unwrap_or_default(),
        });
    }
}

/// Record an upstream attempt: the target for the access log, and a span when traced.
pub(super) fn on_attempt(
    attempt: Attempt<'_>,
    last_target: &mut Option<String>,
    spans: Option<&mut SpanRecorder>,
    upstream: &str,
) {
    match attempt {
        Attempt::Start(target) => {
            *last_target = Some(target.to_owned());
            if let Some(spans) = spans {
                spans.attempt_started(upstream, target);
            }
        }
        Attempt::End(status) => {
            if let Some(spans) = spans {
                spans.attempt_ended(status.map(|s| s.as_u16()));
            }
        }
    }
}
