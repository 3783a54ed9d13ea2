//! `[telemetry]`: OTLP trace export (where spans go, how many are kept, how they are batched).

use std::collections::BTreeMap;
use std::time::Duration;

/// `[telemetry]`: traces (and optionally metrics) exported over OTLP/HTTP (protobuf). Absent:
/// nothing is exported and the request path pays for no span.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// The collector's OTLP/HTTP traces URL (`http://host:4318/v1/traces`); a base URL without a
    /// path gets `/v1/traces`. Empty: no traces (only metrics are exported).
    pub endpoint: String,
    /// Extra headers on every export request (authentication for hosted collectors).
    pub headers: BTreeMap<String, String>,
    /// Share of new traces kept, 0.0 to 1.0; a request that joins a caller's trace follows the
    /// caller's sampled flag (parent-based).
    pub sampling_ratio: f64,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// How long one export request may take before it is abandoned (its spans are dropped).
    pub export_timeout: Duration,
    /// Most spans in one export request.
    pub batch_size: usize,
    /// Finished requests waiting for export; beyond, their spans are dropped and counted.
    pub queue_size: usize,
    /// The collector's OTLP/HTTP metrics URL (`http://host:4318/v1/metrics`); `None`: no OTLP
    /// metrics (Prometheus `/metrics` is always there).
    pub metrics_endpoint: Option<String>,
    /// How often the metrics are exported.
    pub metrics_interval: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            headers: BTreeMap::new(),
            sampling_ratio: 1.0,
            service_name: "tollgate".to_owned(),
            export_timeout: Duration::from_millis(10_000),
            batch_size: 512,
            queue_size: 2048,
            metrics_endpoint: None,
            metrics_interval: Duration::from_millis(60_000),
        }
    }
}
