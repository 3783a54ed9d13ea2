//! OTLP metrics export (`[telemetry] metrics_endpoint`): every `metrics_interval_ms`, the same
//! metrics `/metrics` serves are read from the process's recorder and sent to the collector as
//! one OTLP/HTTP (protobuf) `ExportMetricsServiceRequest`, so the two never disagree.
//!
//! Mapping (cumulative temporality, start time = when the exporter started): a Prometheus
//! counter becomes a monotonic `Sum`, a gauge a `Gauge`, a histogram a `Histogram` with the same
//! bounds (`le` buckets turned into per-bucket counts). Summaries are not produced by the
//! gateway's recorder (it is configured with buckets) and are skipped. A failed or slow export
//! is counted (`tollgate_telemetry_metric_export_failures_total`) and never retried: the next
//! interval sends current values anyway. Export runs on its own task, off the request path.
//!
//! The Prometheus text is parsed here (a few dozen lines for the exposition format the
//! `metrics-exporter-prometheus` recorder writes) rather than through a second recorder, because
//! the crates bridging the `metrics` facade to OpenTelemetry pin other OpenTelemetry versions.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_http::HttpClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::config::TelemetrySettings;

/// Sends the recorder's metrics to the collector every interval, until dropped.
#[derive(Debug)]
pub struct MetricsExporter {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsExporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsExporter {
    /// Start exporting on the current tokio runtime when `settings` names a metrics endpoint.
    pub fn start(settings: &TelemetrySettings) -> Option<Self> {
        let url = settings.metrics_endpoint.clone()?;
        let client = super::export::otlp_client(settings.export_timeout);
        let target = Target {
            url,
            headers: settings.headers.clone(),
            service_name: settings.service_name.clone(),
            timeout: settings.export_timeout,
        };
        let interval = settings.metrics_interval;
        let task = tokio::spawn(async move {
            let started = unix_nanos(SystemTime::now());
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(text) = super::render_metrics() else {
                    continue;
                };
                let request = export_request(&text, &target.service_name, started);
                target.send(&client, request).await;
            }
        });
        Some(Self { task })
    }
}

/// Where and how the metrics go.
struct Target {
    url: String,
    headers: BTreeMap<String, String>,
    service_name: String,
    timeout: Duration,
}

impl Target {
    async fn send(&self, client: &super::export::OtlpClient, request: ExportMetricsServiceRequest) {
        let mut builder = http::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf");
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let outcome = match builder.body(Bytes::from(request.encode_to_vec())) {
            Ok(req) => match tokio::time::timeout(self.timeout, client.send_bytes(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
                Ok(Ok(resp)) => Err(format!("the collector answered {}", resp.status())),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            },
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => metrics::counter!("tollgate_telemetry_metric_exports_total").increment(1),
            Err(error) => {
                metrics::counter!("tollgate_telemetry_metric_export_failures_total").increment(1);
                tracing::warn!(%error, "OTLP metrics export failed");
            }
        }
    }
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The OTLP request carrying every metric in `text` (Prometheus exposition format).
pub(crate) fn export_request(
    text: &str,
    service_name: &str,
    start_nanos: u64,
) -> ExportMetricsServiceRequest {
    let now = unix_nanos(SystemTime::now());
    let metrics = parse(text)
        .into_iter()
        .filter_map(|family| family.into_metric(start_nanos, now))
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", service_name)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "tollgate".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// A metric family's type line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Other,
}

/// One sample line: its full name (with any `_bucket`/`_sum`/`_count` suffix), labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// One `# TYPE` block.
#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Sample>,
}

/// Parse the exposition format; malformed lines are skipped.
fn parse(text: &str) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    let mut help: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, text)) = rest.split_once(' ') {
                help.insert(name, text);
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let Some((name, kind)) = rest.split_once(' ') else {
                continue;
            };
            let kind = match kind.trim() {
                "counter" => Kind::Counter,
                "gauge" => Kind::Gauge,
                "histogram" => Kind::Histogram,
                _ => Kind::Other,
            };
            families.push(Family {
                name: name.to_owned(),
                help: help.get(name).copied().unwrap_or_default().to_owned(),
                kind,
                samples: Vec::new(),
            });
        } else if !line.starts_with('#')
            && let Some(sample) = parse_sample(line)
            && let Some(family) = families.last_mut()
            && sample.name.starts_with(family.name.as_str())
        {
            family.samples.push(sample);
        }
    }
    families
}

/// `name{a="b",c="d"} value` or `name value`.
fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    let name_end = line.find(['{', ' '])?;
    let name = line.get(..name_end)?.to_owned();
    let mut rest = line.get(name_end..)?;
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Labels up to the closing `}`, with `\\`, `\"` and `\n` unescaped; the text after `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches(',');
        if let Some(tail) = s.strip_prefix('}') {
            return Some((labels, tail));
        }
        let (key, after) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim().to_owned(), value));
        s = after.get(end + 1..)?;
    }
}

fn attributes(labels: &[(String, String)]) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| string_attr(k, v)).collect()
}

impl Family {
    fn into_metric(self, start: u64, now: u64) -> Option<Metric> {
        let number = |s: &Sample, value: number_data_point::Value| NumberDataPoint {
            attributes: attributes(&s.labels),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(value),
            ..Default::default()
        };
        let data = match self.kind {
            Kind::Counter => metric::Data::Sum(Sum {
                data_points: self
                    .samples
                    .iter()
                    .map(|s| number(s, counter_value(s.value)))
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            Kind::Gauge => metric::Data::Gauge(Gauge {
                data_points: self
                    .samples
                    .iter()
                    .map(|s| number(s, number_data_point::Value::AsDouble(s.value)))
                    .collect(),
            }),
            Kind::Histogram => metric::Data::Histogram(Histogram {
                data_points: histogram_points(&self.name, &self.samples, start, now),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
            Kind::Other => return None,
        };
        Some(Metric {
            name: self.name,
            description: self.help,
            data: Some(data),
            ..Default::default()
        })
    }
}

/// Counters are whole numbers in the gateway; sent as integers when they are.
fn counter_value(v: f64) -> number_data_point::Value {
    if v.fract() == 0.0 && (0.0..9.0e15).contains(&v) {
        number_data_point::Value::AsInt(v as i64)
    } else {
        number_data_point::Value::AsDouble(v)
    }
}

/// One histogram series being put together from its `_bucket`, `_sum` and `_count` lines.
#[derive(Default)]
struct Series {
    /// (upper bound, cumulative count), `+Inf` included.
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

fn histogram_points(
    name: &str,
    samples: &[Sample],
    start: u64,
    now: u64,
) -> Vec<HistogramDataPoint> {
    let mut series: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
    for s in samples {
        let suffix = s.name.get(name.len()..).unwrap_or_default();
        let mut labels = s.labels.clone();
        let le = labels
            .iter()
            .position(|(k, _)| k == "le")
            .map(|i| labels.remove(i).1);
        let entry = series.entry(labels).or_default();
        match (suffix, le) {
            ("_bucket", Some(le)) => {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                if !bound.is_nan() {
                    entry.buckets.push((bound, s.value));
                }
            }
            ("_sum", None) => entry.sum = s.value,
            ("_count", None) => entry.count = s.value,
            _ => {}
        }
    }
    series
        .into_iter()
        .map(|(labels, mut s)| {
            s.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let explicit_bounds = s
                .buckets
                .iter()
                .map(|b| b.0)
                .filter(|b| b.is_finite())
                .collect();
            let mut previous = 0.0;
            let mut bucket_counts: Vec<u64> = s
                .buckets
                .iter()
                .map(|&(_, cumulative)| {
                    let n = (cumulative - previous).max(0.0);
                    previous = cumulative;
                    n as u64
                })
                .collect();
            if s.buckets.last().is_none_or(|b| b.0.is_finite()) {
                // No `+Inf` line: the rest of the count is above the last bound.
                bucket_counts.push((s.count - previous).max(0.0) as u64);
            }
            HistogramDataPoint {
                attributes: attributes(&labels),
                start_time_unix_nano: start,
                time_unix_nano: now,
                count: s.count as u64,
                sum: Some(s.sum),
                bucket_counts,
                explicit_bounds,
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP tollgate_requests_total Requests answered.
# TYPE tollgate_requests_total counter
tollgate_requests_total{route="a \"quoted\" route",status="200"} 3
tollgate_requests_total{route="b",status="500"} 1

# TYPE tollgate_connections gauge
tollgate_connections 2.5

# TYPE tollgate_request_duration_seconds histogram
tollgate_request_duration_seconds_bucket{route="a",le="0.1"} 1
tollgate_request_duration_seconds_bucket{route="a",le="1"} 3
tollgate_request_duration_seconds_bucket{route="a",le="+Inf"} 4
tollgate_request_duration_seconds_sum{route="a"} 2.25
tollgate_request_duration_seconds_count{route="a"} 4
"#;

    #[test]
    fn counters_gauges_and_histograms_map_to_otlp() {
        let request = export_request(TEXT, "svc", 1);
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 3);
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("{:?}", metrics[0])
        };
        assert!(sum.is_monotonic);
        assert_eq!(metrics[0].description, "Requests answered.");
        assert_eq!(sum.data_points.len(), 2);
        assert_eq!(
            sum.data_points[0].value,
            Some(number_data_point::Value::AsInt(3))
        );
        let route = &sum.data_points[0].attributes[0];
        assert_eq!(route.key, "route");
        assert_eq!(
            route.value.as_ref().and_then(|v| v.value.clone()),
            Some(any_value::Value::StringValue("a \"quoted\" route".into()))
        );
        let Some(metric::Data::Gauge(gauge)) = &metrics[1].data else {
            panic!()
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(2.5))
        );
        let Some(metric::Data::Histogram(h)) = &metrics[2].data else {
            panic!()
        };
        let point = &h.data_points[0];
        assert_eq!(point.explicit_bounds, vec![0.1, 1.0]);
        assert_eq!(point.bucket_counts, vec![1, 2, 1]);
        assert_eq!((point.count, point.sum), (4, Some(2.25)));
        assert_eq!(point.attributes.len(), 1, "le is not an attribute");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "# TYPE x counter\nx{a=\"unterminated} 1\nx{a=\"ok\"} 2\nx nonsense\n";
        let families = parse(text);
        assert_eq!(families[0].samples.len(), 1);
        assert_eq!(families[0].samples[0].value, 2.0);
    }
}
