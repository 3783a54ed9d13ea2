//! The process-wide metrics recorder (Prometheus text, rendered for `/metrics` by the admin API
//! and for OTLP metrics export by `metrics_export`), and the thread that keeps its histograms
//! bounded.
//!
//! The recorder keeps every histogram sample in a list until the samples are folded into their
//! buckets, which happens when `/metrics` is rendered or at upkeep. A gateway nobody scrapes would
//! otherwise grow by each request's samples (about 150 bytes per request with five plugins), so
//! upkeep runs on its own thread every [`UPKEEP_INTERVAL`].

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Histogram buckets in seconds for every `tollgate_*` histogram: from 50 µs (a warm plugin
/// call) to 30 s (a slow upstream).
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram samples are folded into their buckets: the memory they take is at most
/// this long's worth of samples (at 30,000 requests a second with five plugins, about 5 MB).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Install the process-wide Prometheus recorder and start its upkeep (once; later calls do
/// nothing).
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
            Ok(handle) => {
                start_upkeep(handle.clone());
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// Fold histogram samples into their buckets every [`UPKEEP_INTERVAL`], for the life of the
/// process (as long as the recorder it serves).
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("tollgate-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "metrics upkeep thread not started: histograms grow until /metrics is read");
    }
}

/// Every metric in the Prometheus text format, or `None` when no recorder is installed.
pub fn render_metrics() -> Option<String> {
    PROMETHEUS.get()?.as_ref().map(PrometheusHandle::render)
}
