//! The process-wide metrics recorder (Prometheus text, rendered for `/metrics` by the admin API
//! and for OTLP metrics export by `metrics_export`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Histogram buckets in seconds for every `tollgate_*` histogram: from 50 µs (a warm plugin
/// call) to 30 s (a slow upstream).
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Install the process-wide Prometheus recorder (once; later calls do nothing).
pub fn install_metrics_recorder() {
    PROMETHEUS.get_or_init(|| {
        let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
            Ok(builder) => builder,
            Err(e) => {
                tracing::warn!(error = %e, "histogram buckets refused; using summaries");
                PrometheusBuilder::new()
            }
        };
        match builder.install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// Every metric in the Prometheus text format, or `None` when no recorder is installed.
pub fn render_metrics() -> Option<String> {
    PROMETHEUS.get()?.as_ref().map(PrometheusHandle::render)
}
