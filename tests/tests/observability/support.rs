//! An OTLP/HTTP trace receiver on `127.0.0.1:0` that decodes `ExportTraceServiceRequest` with the
//! collector's message types, and helpers to read a gateway's `/metrics`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tollgate_tests::{Upstream, get};

/// A running receiver and the spans it got (with the `service.name` of their resource).
pub struct Receiver {
    pub upstream: Upstream,
    pub spans: Arc<Mutex<Vec<(String, Span)>>>,
    pub exports: Arc<Mutex<usize>>,
    /// Exports answered 503 (see [`Receiver::failing_until`]).
    pub refused: Arc<Mutex<usize>>,
}

impl Receiver {
    /// A receiver that answers each export after `delay`.
    pub async fn start(delay: Duration) -> Self {
        Self::serve(delay, None).await
    }

    /// A receiver that answers 503 to every export until `until` (keeping none of its spans),
    /// then accepts them at once: a collector that is down for a while.
    pub async fn failing_until(until: Instant) -> Self {
        Self::serve(Duration::ZERO, Some(until)).await
    }

    async fn serve(delay: Duration, fail_until: Option<Instant>) -> Self {
        let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
        let exports: Arc<Mutex<usize>> = Arc::default();
        let refused: Arc<Mutex<usize>> = Arc::default();
        let (s, e, r) = (spans.clone(), exports.clone(), refused.clone());
        let upstream = Upstream::start(Arc::new(move |req| {
            let (spans, exports, refused) = (s.clone(), e.clone(), r.clone());
            Box::pin(async move {
                assert_eq!(req.uri().path(), "/v1/traces");
                assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                if fail_until.is_some_and(|until| Instant::now() < until) {
                    *refused.lock().unwrap() += 1;
                    return Response::builder()
                        .status(503)
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                }
                let export = ExportTraceServiceRequest::decode(req.body().clone()).unwrap();
                *exports.lock().unwrap() += 1;
                for resource in export.resource_spans {
                    let service = resource
                        .resource
                        .as_ref()
                        .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                        .and_then(|a| a.value.as_ref())
                        .and_then(|v| match &v.value {
                            Some(Value::StringValue(s)) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            spans.lock().unwrap().push((service.clone(), span));
                        }
                    }
                }
                tokio::time::sleep(delay).await;
                let body = ExportTraceServiceResponse::default().encode_to_vec();
                Response::builder()
                    .header("content-type", "application/x-protobuf")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap()
            })
        }))
        .await;
        Self {
            upstream,
            spans,
            exports,
            refused,
        }
    }

    /// `http://ADDR` of the receiver.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.upstream.addr)
    }

    /// Wait until at least `n` spans arrived (or `within` passed) and return them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<(String, Span)> {
        let deadline = Instant::now() + within;
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A span attribute's value as text (strings, ints and bools).
pub fn attr(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Lower-case hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The gateway's `/metrics` text.
pub async fn metrics(admin: std::net::SocketAddr) -> String {
    let reply = get(&format!("http://{admin}/metrics"), &[]).await;
    assert_eq!(reply.status, 200);
    String::from_utf8(reply.body.to_vec()).unwrap()
}

/// The sum of every sample of `name` whose labels contain `labels` (e.g. `reason="queue_full"`).
pub fn sample_sum(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
