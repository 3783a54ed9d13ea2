//! Logging setup (JSON lines on stderr, filtered by `RUST_LOG`, default `info`), W3C trace
//! context and OTLP trace export.
//!
//! Trace context: each request joins the caller's trace (`traceparent`) or starts one, and the
//! upstream receives a child `traceparent` naming the gateway's request span.
//!
//! Export (`[telemetry]`, docs/operations.md): off when the section is absent, and then the request
//! path pays one branch for it. When on, [`Tracer::sample`] decides per request (parent-based, with
//! `sampling_ratio` for new traces); a sampled request carries a [`SpanRecorder`] in its
//! [`RequestState`](crate::chain::RequestState), where plugin calls and upstream attempts add
//! their times, and once its response is sent a [`FinishedRequest`] goes to the exporter's bounded
//! queue. Spans are built from that data with the OpenTelemetry API off the request path
//! ([`export`]): one server span per request (its id is the one the upstream saw), one child per
//! plugin call and per upstream attempt. A sampled-out request allocates nothing for tracing.
//!
//! `tracing` spans (at `debug`, so the default level pays nothing for them): every request runs in
//! a span `request` (fields `request_id`, `trace_id`, `method`, `route`), every plugin call in a
//! span `plugin` (`plugin`, `phase`), so log lines written meanwhile carry them. They are for
//! logs only and are not exported.

mod export;
mod histograms;
mod metrics_export;
mod outage;
mod prometheus;
mod record;

pub use export::Tracer;
pub use metrics_export::MetricsExporter;
pub use prometheus::{install_metrics_recorder, render_metrics};
pub use record::{FinishedRequest, SpanRecorder};

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};
use tracing_subscriber::EnvFilter;

/// `traceparent` (W3C Trace Context).
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` (W3C Trace Context): vendor data, kept only with a valid `traceparent`.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Install the global subscriber once; later calls do nothing.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The gateway's place in a distributed trace for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 128-bit trace id: the caller's when its `traceparent` was valid, else new.
    pub trace_id: u128,
    /// The caller's span id, when it sent a valid `traceparent`.
    pub parent_id: Option<u64>,
    /// The gateway's span for this request: the parent the upstream sees.
    pub span_id: u64,
    /// Trace flags (bit 0: sampled). Kept from the caller; `01` for a new trace.
    pub flags: u8,
}

impl TraceContext {
    /// Join the trace in `headers` (a valid version-00 `traceparent`), or start a new one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        // Two `traceparent` headers are as invalid as a malformed one.
        let parsed = match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok().and_then(parse_traceparent),
            _ => None,
        };
        match parsed {
            Some((trace_id, parent_id, flags)) => Self {
                trace_id,
                parent_id: Some(parent_id),
                span_id: random_span_id(),
                flags,
            },
            None => Self {
                trace_id: random_trace_id(),
                parent_id: None,
                span_id: random_span_id(),
                flags: 0x01,
            },
        }
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        String::from_utf8_lossy(&self.trace_id_hex_bytes()).into_owned()
    }

    /// [`Self::trace_id_hex`] without a string of its own (the access log keeps it per request).
    pub fn trace_id_hex_bytes(&self) -> [u8; 32] {
        let mut hex = [0; 32];
        write_hex(&mut hex, self.trace_id);
        hex
    }

    /// `00-TRACE-SPAN-FLAGS`: the `traceparent` sent upstream, naming the gateway's span.
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&self.traceparent_bytes()).into_owned()
    }

    /// [`Self::traceparent`] as bytes, written without the formatting machinery (it is built
    /// for every request).
    fn traceparent_bytes(&self) -> [u8; 55] {
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        write_hex(&mut out[3..35], self.trace_id);
        write_hex(&mut out[36..52], u128::from(self.span_id));
        write_hex(&mut out[53..55], u128::from(self.flags));
        out
    }

    /// Replace the caller's `traceparent` with the child one; drop `tracestate` when the caller's
    /// trace was not joined (it belongs to a trace we did not continue).
    pub fn apply(&self, headers: &mut HeaderMap) {
        if self.parent_id.is_none() {
            headers.remove(&TRACESTATE);
        }
        let traceparent = self.traceparent_bytes();
        // Applied to the plugins' view and again to the upstream request: the second time it is
        // usually there already.
        if crate::header_map::is_only_value(headers, &TRACEPARENT, &traceparent) {
            return;
        }
        match HeaderValue::from_bytes(&traceparent) {
            Ok(value) => {
                headers.insert(TRACEPARENT.clone(), value);
            }
            Err(_) => {
                headers.remove(&TRACEPARENT);
            }
        }
    }
}

/// Fill `out` with the low `2 * out.len()` hex digits of `value`, lower case, most significant
/// first (ids are written on every request: no `format!`).
pub(crate) fn write_hex(out: &mut [u8], mut value: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// `00-<32 hex>-<16 hex>-<2 hex>` with lower-case hex, neither id all zeros. Versions above 00
/// may append fields after a `-` (the spec's forward compatibility); `ff` is invalid.
fn parse_traceparent(value: &str) -> Option<(u128, u64, u8)> {
    let value = value.trim();
    let bytes = value.as_bytes();
    if bytes.len() < 55 {
        return None;
    }
    let version = &value[..2];
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version) || version == "ff" {
        return None;
    }
    if version == "00" && bytes.len() != 55 {
        return None;
    }
    if bytes.len() > 55 && bytes[55] != b'-' {
        return None;
    }
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    if !lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags) {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let parent_id = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags))
}

/// 64 unpredictable bits: SipHash with per-thread random keys over a process counter (ids for
/// correlation, not secrets; no extra dependency).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEY: RandomState = RandomState::new();
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    KEY.with(|k| k.hash_one(n))
}

fn random_span_id() -> u64 {
    loop {
        let id = random_u64();
        if id != 0 {
            return id;
        }
    }
}

fn random_trace_id() -> u128 {
    loop {
        let id = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(traceparent: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT.clone(),
            HeaderValue::from_str(traceparent).unwrap_or(HeaderValue::from_static("x")),
        );
        h.insert(TRACESTATE.clone(), HeaderValue::from_static("k=v"));
        h
    }

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_parent_is_joined_with_a_new_span() {
        let ctx = TraceContext::from_headers(&headers(VALID));
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_id, Some(0x00f0_67aa_0ba9_02b7));
        assert_ne!(ctx.span_id, 0x00f0_67aa_0ba9_02b7);
        let child = ctx.traceparent();
        assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(child.ends_with("-01"));
        let mut h = headers(VALID);
        ctx.apply(&mut h);
        assert_eq!(h[&TRACEPARENT], child.as_str());
        assert_eq!(h[&TRACESTATE], "k=v");
    }

    #[test]
    fn invalid_parents_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let ctx = TraceContext::from_headers(&headers(bad));
            assert_eq!(ctx.parent_id, None, "{bad}");
            assert_ne!(ctx.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
            let mut h = headers(bad);
            ctx.apply(&mut h);
            assert!(h.get(&TRACESTATE).is_none());
            assert_eq!(h[&TRACEPARENT].len(), 55);
        }
        // A later version may append fields.
        let ctx = TraceContext::from_headers(&headers(&format!("01{}-more", &VALID[2..])));
        assert!(ctx.parent_id.is_some());
    }

    #[test]
    fn ids_are_written_as_format_would() {
        for (trace_id, span_id, flags) in [(1, 2, 0), (u128::MAX, u64::MAX, 0xff), (0xabc, 7, 1)] {
            let ctx = TraceContext {
                trace_id,
                parent_id: None,
                span_id,
                flags,
            };
            let expected = format!("00-{trace_id:032x}-{span_id:016x}-{flags:02x}");
            assert_eq!(ctx.traceparent(), expected);
            assert_eq!(ctx.trace_id_hex(), format!("{trace_id:032x}"));
            let mut headers = HeaderMap::new();
            ctx.apply(&mut headers);
            assert_eq!(headers[&TRACEPARENT], expected.as_str());
        }
    }

    #[test]
    fn new_ids_differ() {
        let a = TraceContext::from_headers(&HeaderMap::new());
        let b = TraceContext::from_headers(&HeaderMap::new());
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
    }
}
