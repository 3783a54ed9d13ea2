//! The trace exporter: sampled requests are handed over through a bounded queue (never waited
//! on: when it is full the request's spans are dropped and counted) to one task on the control
//! runtime that turns them into OpenTelemetry spans and sends them in batches to the collector
//! over OTLP/HTTP (protobuf), each export bounded by `export_timeout_ms`.
//!
//! The task is not woken per request (that would be a cross-thread wake-up on every traced
//! request): it drains the queue every [`EXPORT_EVERY`], or at once when a sender sees that a
//! batch's worth (or half the queue) is waiting.
//!
//! While the collector keeps failing, exports pause with a growing back-off and the log says so
//! once, then at most every 30 s (see `outage`).
//!
//! Metrics: `tollgate_telemetry_spans_exported_total`, `tollgate_telemetry_spans_dropped_total`
//! (label `reason`: `queue_full`, or `export_failed` for a failed export's spans and those of a
//! back-off pause) and `tollgate_telemetry_export_failures_total`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use tokio::sync::{Notify, mpsc};

use super::outage::{Outage, Recovered, Report};
use super::record::{FinishedRequest, Sampler};
use super::{TraceContext, random_span_id};
use crate::config::TelemetrySettings;

/// The HTTP client of every OTLP export (traces and metrics): `http://` or `https://` with the
/// public roots, each request bounded by `timeout`.
pub(super) type OtlpClient = opentelemetry_http::hyper::HyperClient<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
>;

/// A new [`OtlpClient`].
pub(super) fn otlp_client(timeout: std::time::Duration) -> OtlpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    opentelemetry_http::hyper::HyperClient::new(https, timeout, None)
}

/// Longest a finished request waits in the queue while fewer than a batch are waiting.
pub const EXPORT_EVERY: Duration = Duration::from_millis(200);

/// Hands sampled requests to the export task. Cheap to clone (a queue sender).
#[derive(Debug, Clone)]
pub struct Tracer {
    queue: mpsc::Sender<FinishedRequest>,
    /// Wakes the export task before its timer.
    wake: Arc<Notify>,
    /// Requests waiting that make a sender wake the task: a batch, or half the queue.
    wake_at: usize,
    sampler: Sampler,
}

impl Tracer {
    /// Build the OTLP exporter for `settings` and start its task on the current tokio runtime.
    pub fn start(settings: &TelemetrySettings) -> Result<Self, String> {
        let client = otlp_client(settings.export_timeout);
        let headers: HashMap<String, String> = settings
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(settings.export_timeout)
            .with_headers(headers)
            // A failed export is dropped and counted, not retried: the queue behind it is bounded.
            .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
            .build()
            .map_err(|e| format!("telemetry: cannot build the OTLP exporter: {e}"))?;
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name(settings.service_name.clone())
                .build(),
        );
        let (queue, receiver) = mpsc::channel(settings.queue_size);
        let wake = Arc::new(Notify::new());
        let batches = Batches {
            size: settings.batch_size,
            timeout: settings.export_timeout,
            wake: wake.clone(),
        };
        tokio::spawn(export_loop(exporter, receiver, batches));
        Ok(Self {
            queue,
            wake,
            wake_at: settings.batch_size.min(settings.queue_size / 2).max(1),
            sampler: Sampler::new(settings.sampling_ratio),
        })
    }

    /// Whether this request is traced; a new trace's sampled flag is set to match, so the
    /// upstream's spans follow the same decision.
    pub fn sample(&self, ctx: &mut TraceContext) -> bool {
        self.sampler.sample(ctx)
    }

    /// Queue a finished request for export, or drop it (counted) when the queue is full.
    pub fn send(&self, finished: FinishedRequest) {
        let sent = self.queue.try_send(finished);
        if self.queue.max_capacity() - self.queue.capacity() >= self.wake_at {
            self.wake.notify_one();
        }
        if let Err(e) = sent {
            let spans = match &e {
                mpsc::error::TrySendError::Full(f) | mpsc::error::TrySendError::Closed(f) => {
                    f.span_count()
                }
            };
            dropped("queue_full", spans);
        }
    }
}

fn dropped(reason: &'static str, spans: usize) {
    metrics::counter!("tollgate_telemetry_spans_dropped_total", "reason" => reason)
        .increment(spans as u64);
}

/// How the export task batches.
struct Batches {
    /// Most spans in one export request.
    size: usize,
    /// Longest one export may take.
    timeout: Duration,
    /// Rung by senders when a batch is waiting.
    wake: Arc<Notify>,
}

/// Every [`EXPORT_EVERY`] (or when woken), take what is queued, export it in batches of
/// `batch_size` spans, repeat; ends when every sender is gone and the queue is empty.
async fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    mut receiver: mpsc::Receiver<FinishedRequest>,
    batches: Batches,
) {
    let scope = InstrumentationScope::builder("tollgate")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let mut requests = Vec::new();
    let mut outage = Outage::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(EXPORT_EVERY) => {}
            () = batches.wake.notified() => {}
        }
        if receiver.is_empty() {
            if receiver.is_closed() {
                return;
            }
            continue;
        }
        requests.clear();
        let waiting = receiver.len();
        receiver.recv_many(&mut requests, waiting).await;
        let mut batch = Vec::new();
        for request in requests.drain(..) {
            if outage.paused(Instant::now()) {
                // The collector is failing: drop (and count) without building the spans.
                let spans = request.span_count();
                dropped("export_failed", spans);
                outage.skipped(spans);
                continue;
            }
            spans_of(&request, &scope, &mut batch);
            if batch.len() >= batches.size {
                let full = std::mem::take(&mut batch);
                export(&exporter, full, batches.timeout, &mut outage).await;
            }
        }
        if !batch.is_empty() {
            export(&exporter, batch, batches.timeout, &mut outage).await;
        }
    }
}

/// Send one batch, count the outcome, and tell `outage` (which decides what is logged).
async fn export(
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: Vec<SpanData>,
    timeout: Duration,
    outage: &mut Outage,
) {
    let count = batch.len();
    let started = Instant::now();
    let failure = match tokio::time::timeout(timeout, exporter.export(batch)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
    };
    match failure {
        None => {
            metrics::counter!("tollgate_telemetry_spans_exported_total").increment(count as u64);
            if let Some(Recovered {
                lasted,
                failed,
                dropped,
            }) = outage.succeeded(Instant::now())
            {
                tracing::info!(
                    failing_ms = lasted.as_millis() as u64,
                    failed_exports = failed,
                    dropped_spans = dropped,
                    "OTLP trace export works again (counts since the last warning)"
                );
            }
        }
        Some(error) => {
            metrics::counter!("tollgate_telemetry_export_failures_total").increment(1);
            dropped("export_failed", count);
            let took_ms = started.elapsed().as_millis() as u64;
            match outage.failed(count, Instant::now()) {
                Report::Started => tracing::warn!(
                    spans = count,
                    took_ms,
                    %error,
                    "OTLP trace export failed; retrying with back-off, spans dropped meanwhile"
                ),
                Report::StillFailing { failed, dropped } => tracing::warn!(
                    failed_exports = failed,
                    dropped_spans = dropped,
                    %error,
                    "OTLP trace export still failing (counts since the last warning)"
                ),
                Report::Quiet => {}
            }
        }
    }
}

fn span_context(trace_id: u128, span_id: u64, flags: u8) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(trace_id.to_be_bytes()),
        SpanId::from_bytes(span_id.to_be_bytes()),
        TraceFlags::new(flags),
        false,
        TraceState::NONE,
    )
}

/// One span of a request's trace.
struct Span {
    id: u64,
    parent: u64,
    kind: SpanKind,
    name: Cow<'static, str>,
    start: Instant,
    end: Instant,
    attributes: Vec<KeyValue>,
    error: Option<Cow<'static, str>>,
}

/// The request's server span (its id is the one sent upstream in `traceparent`), one internal
/// span per plugin call and one client span per upstream attempt.
fn spans_of(r: &FinishedRequest, scope: &InstrumentationScope, out: &mut Vec<SpanData>) {
    let ctx = r.context;
    let route = r.route.as_deref();
    let mut attributes = vec![
        KeyValue::new("http.request.method", r.method.as_str().to_owned()),
        KeyValue::new("http.response.status_code", i64::from(r.status)),
    ];
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route.to_owned()));
    }
    if let Some(path) = &r.path {
        attributes.push(KeyValue::new("url.path", path.clone()));
    }
    if let Some(host) = &r.server_address {
        attributes.push(KeyValue::new("server.address", host.clone()));
    }
    if let Some(ip) = r.client_address {
        attributes.push(KeyValue::new("client.address", ip.to_string()));
    }
    let name = match route {
        Some(route) => format!("{} {route}", r.method),
        None => r.method.to_string(),
    };
    let server = Span {
        id: ctx.span_id,
        parent: ctx.parent_id.unwrap_or(0),
        kind: SpanKind::Server,
        name: name.into(),
        start: r.started,
        end: r.ended,
        attributes,
        error: (r.status >= 500).then_some(Cow::Borrowed("server error")),
    };
    out.push(span_data(r, server, ctx.parent_id.is_some(), scope));
    for call in &r.spans.plugins {
        let failed = !matches!(call.outcome, "continue" | "respond" | "defer");
        let span = Span {
            id: random_span_id(),
            parent: ctx.span_id,
            kind: SpanKind::Internal,
            name: format!("plugin {} {}", call.plugin, call.phase).into(),
            start: call.start,
            end: call.end,
            attributes: vec![
                KeyValue::new("tollgate.plugin.name", call.plugin.clone()),
                KeyValue::new("tollgate.plugin.phase", call.phase),
                KeyValue::new("tollgate.plugin.outcome", call.outcome),
                KeyValue::new("tollgate.plugin.instance_reused", call.reused),
            ],
            error: failed.then_some(Cow::Borrowed(call.outcome)),
        };
        out.push(span_data(r, span, false, scope));
    }
    for attempt in &r.spans.attempts {
        let mut attributes = vec![
            KeyValue::new("tollgate.upstream.name", attempt.upstream.clone()),
            KeyValue::new("tollgate.upstream.target", attempt.target.clone()),
            KeyValue::new("http.request.resend_count", i64::from(attempt.retry)),
        ];
        if let Some(status) = attempt.status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        let span = Span {
            id: random_span_id(),
            parent: ctx.span_id,
            kind: SpanKind::Client,
            name: format!("upstream {}", attempt.upstream).into(),
            start: attempt.start,
            end: attempt.end.unwrap_or(r.ended),
            attributes,
            error: attempt
                .status
                .is_none()
                .then_some(Cow::Borrowed("the attempt failed")),
        };
        out.push(span_data(r, span, false, scope));
    }
}

fn span_data(
    r: &FinishedRequest,
    span: Span,
    parent_is_remote: bool,
    scope: &InstrumentationScope,
) -> SpanData {
    SpanData {
        span_context: span_context(r.context.trace_id, span.id, r.context.flags | 0x01),
        parent_span_id: SpanId::from_bytes(span.parent.to_be_bytes()),
        parent_span_is_remote: parent_is_remote,
        span_kind: span.kind,
        name: span.name,
        start_time: r.wall(span.start),
        end_time: r.wall(span.end),
        attributes: span.attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match span.error {
            Some(description) => Status::Error { description },
            None => Status::Unset,
        },
        instrumentation_scope: scope.clone(),
    }
}
