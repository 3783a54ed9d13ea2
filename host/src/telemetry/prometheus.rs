//! The process-wide metrics recorder (Prometheus text, rendered for `/metrics` by the admin API
//! and for OTLP metrics export by `metrics_export`).
//!
//! Counters and gauges live in the Prometheus exporter's recorder. Histograms live in
//! [`Histograms`]: fixed buckets counted as each sample is recorded, so nothing piles up between
//! scrapes, no thread has to fold samples, and no sample is lost to a fold (see that module).

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::histograms::Histograms;

/// The installed recorder's two halves, read back when `/metrics` is rendered.
struct Installed {
    prometheus: PrometheusHandle,
    histograms: Arc<Histograms>,
}

static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// The exporter's recorder for counters and gauges, our own histograms beside it.
struct GatewayRecorder {
    prometheus: PrometheusRecorder,
    histograms: Arc<Histograms>,
}

impl Recorder for GatewayRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_gauge(key, unit, description);
    }

    /// Histograms are rendered without `# HELP` lines, so their descriptions are not kept.
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.prometheus.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.prometheus.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.histograms.series(key))
    }
}

/// Install the process-wide recorder (once; later calls do nothing).
pub fn install_metrics_recorder() {
    INSTALLED.get_or_init(|| {
        let prometheus = PrometheusBuilder::new().build_recorder();
        let installed = Installed {
            prometheus: prometheus.handle(),
            histograms: Arc::default(),
        };
        let recorder = GatewayRecorder {
            prometheus,
            histograms: Arc::clone(&installed.histograms),
        };
        match metrics::set_global_recorder(recorder) {
            Ok(()) => Some(installed),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// Every metric in the Prometheus text format, or `None` when no recorder is installed.
pub fn render_metrics() -> Option<String> {
    let installed = INSTALLED.get()?.as_ref()?;
    let mut text = installed.prometheus.render();
    installed.histograms.render_into(&mut text);
    Some(text)
}
