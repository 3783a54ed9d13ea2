//! What a sampled request remembers for its trace: each plugin call and each upstream attempt,
//! with monotonic start and end times. Only sampled requests carry a [`SpanRecorder`]; the others
//! allocate nothing for tracing.

use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use http::Method;

use super::TraceContext;

/// The child spans of one sampled request, recorded as the request runs.
#[derive(Debug, Clone, Default)]
pub struct SpanRecorder {
    pub(super) plugins: Vec<PluginCall>,
    pub(super) attempts: Vec<UpstreamAttempt>,
}

/// One plugin phase call.
#[derive(Debug, Clone)]
pub(super) struct PluginCall {
    pub(super) plugin: String,
    pub(super) phase: &'static str,
    pub(super) outcome: &'static str,
    pub(super) reused: bool,
    pub(super) start: Instant,
    pub(super) end: Instant,
}

/// One attempt to send the request to an upstream target.
#[derive(Debug, Clone)]
pub(super) struct UpstreamAttempt {
    pub(super) upstream: String,
    pub(super) target: String,
    /// 0 for the first attempt, 1 for the first retry, …
    pub(super) retry: u32,
    pub(super) start: Instant,
    pub(super) end: Option<Instant>,
    /// The response status, or `None` when the attempt failed.
    pub(super) status: Option<u16>,
}

impl SpanRecorder {
    /// A plugin call that started at `start` and just ended. `reused`: the instance had served
    /// calls before this one.
    pub fn plugin(
        &mut self,
        plugin: &str,
        phase: &'static str,
        outcome: &'static str,
        reused: bool,
        start: Instant,
    ) {
        self.plugins.push(PluginCall {
            plugin: plugin.to_owned(),
            phase,
            outcome,
            reused,
            start,
            end: Instant::now(),
        });
    }

    /// An attempt to `target` of `upstream` starts now.
    pub fn attempt_started(&mut self, upstream: &str, target: &str) {
        let retry = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
        self.attempts.push(UpstreamAttempt {
            upstream: upstream.to_owned(),
            target: target.to_owned(),
            retry,
            start: Instant::now(),
            end: None,
            status: None,
        });
    }

    /// The latest attempt ended now, with this response status (`None`: it failed).
    pub fn attempt_ended(&mut self, status: Option<u16>) {
        if let Some(attempt) = self.attempts.last_mut() {
            attempt.end = Some(Instant::now());
            attempt.status = status;
        }
    }
}

/// A finished sampled request: what the exporter turns into one server span and its children.
#[derive(Debug)]
pub struct FinishedRequest {
    /// The request's trace ids: its span id is the one the upstream saw in `traceparent`.
    pub context: TraceContext,
    /// When the gateway started on the request (monotonic).
    pub started: Instant,
    /// When the response body was done (monotonic), and the wall clock then.
    pub ended: Instant,
    /// Wall-clock time at `ended`: every span's time is placed from it.
    pub ended_wall: SystemTime,
    /// The client's method.
    pub method: Method,
    /// The matched route's name.
    pub route: Option<String>,
    /// The normalised path.
    pub path: Option<String>,
    /// The response status sent to the client.
    pub status: u16,
    /// The host the client asked for.
    pub server_address: Option<String>,
    /// The client's address (trusted proxies applied).
    pub client_address: Option<IpAddr>,
    /// Plugin calls and upstream attempts.
    pub spans: SpanRecorder,
}

impl FinishedRequest {
    /// The wall-clock time of a monotonic instant of this request.
    pub(super) fn wall(&self, at: Instant) -> SystemTime {
        self.ended_wall - self.ended.saturating_duration_since(at)
    }

    /// Spans this request exports: itself and its children.
    pub(super) fn span_count(&self) -> usize {
        1 + self.spans.plugins.len() + self.spans.attempts.len()
    }
}

/// Parent-based sampling with a ratio for new traces: a request that joins a caller's trace
/// follows the caller's sampled flag; a new trace is kept when its id falls under the ratio
/// (the same rule as OpenTelemetry's `TraceIdRatioBased`, so every service keeps the same traces).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sampler {
    /// Traces whose lower 63 id bits are below this are kept.
    bound: u64,
    all: bool,
}

impl Sampler {
    pub(super) fn new(ratio: f64) -> Self {
        let ratio = ratio.clamp(0.0, 1.0);
        // `as` saturates: 1.0 × 2^63 is exactly the bound that keeps every trace.
        let bound = (ratio * (1u64 << 63) as f64) as u64;
        Self {
            bound,
            all: ratio >= 1.0,
        }
    }

    /// Decide for `ctx`, and set its sampled flag (bit 0) for a new trace accordingly.
    pub(super) fn sample(&self, ctx: &mut TraceContext) -> bool {
        if ctx.parent_id.is_some() {
            return ctx.flags & 0x01 == 0x01;
        }
        let lower = (ctx.trace_id as u64) >> 1;
        let sampled = self.all || lower < self.bound;
        ctx.flags = (ctx.flags & !0x01) | u8::from(sampled);
        sampled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_trace(id: u128) -> TraceContext {
        TraceContext {
            trace_id: id,
            parent_id: None,
            span_id: 1,
            flags: 0x01,
        }
    }

    #[test]
    fn ratio_bounds_and_parent_flag() {
        let all = Sampler::new(1.0);
        let none = Sampler::new(0.0);
        let half = Sampler::new(0.5);
        let mut ctx = new_trace(u128::from(u64::MAX));
        assert!(all.sample(&mut ctx));
        assert_eq!(ctx.flags, 0x01);
        assert!(!none.sample(&mut ctx));
        assert_eq!(ctx.flags, 0x00);
        assert!(!half.sample(&mut new_trace(u128::from(u64::MAX))));
        assert!(half.sample(&mut new_trace(2)));
        // A joined trace follows its caller, whatever the ratio.
        let mut joined = TraceContext {
            parent_id: Some(7),
            ..new_trace(2)
        };
        assert!(none.sample(&mut joined));
        joined.flags = 0;
        assert!(!all.sample(&mut joined));
        let kept = (0..10_000u128)
            .filter(|i| half.sample(&mut new_trace(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c))))
            .count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
    }
}
