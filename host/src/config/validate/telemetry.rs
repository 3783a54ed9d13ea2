//! `[telemetry]`: the OTLP collector's URL, export headers, sampling, batching and the queue.

use http::{HeaderName, HeaderValue, Uri};

use super::Validator;
use crate::config::model::TelemetrySettings;
use crate::config::raw::RawTelemetry;

impl Validator<'_> {
    /// `[telemetry]`: absent means off; present needs an `http://` or `https://` `endpoint`.
    pub(super) fn telemetry(&mut self, value: Option<toml::Value>) -> Option<TelemetrySettings> {
        let raw = self.de::<RawTelemetry>("telemetry", value?)?;
        let defaults = TelemetrySettings::default();
        let metrics_endpoint = raw
            .metrics_endpoint
            .map(|url| self.otlp_url("telemetry.metrics_endpoint", url, "/v1/metrics"));
        let endpoint = match raw.endpoint {
            Some(endpoint) => self.otlp_url("telemetry.endpoint", endpoint, "/v1/traces"),
            None if metrics_endpoint.is_some() => String::new(),
            None => {
                self.issues.push(
                    "telemetry.endpoint",
                    "is required (unless only metrics_endpoint is set): the collector's OTLP/HTTP URL, e.g. \"http://127.0.0.1:4318\"",
                );
                String::new()
            }
        };
        let metrics_interval = self.millis(
            "telemetry",
            "metrics_interval_ms",
            raw.metrics_interval_ms,
            60_000,
        );
        for (name, value) in &raw.headers {
            let path = format!("telemetry.headers.{name}");
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.issues.push(path, "is not a valid header name");
            } else if HeaderValue::from_str(value).is_err() {
                self.issues.push(path, "is not a valid header value");
            }
        }
        let sampling_ratio = match raw.sampling_ratio {
            Some(r) if !(0.0..=1.0).contains(&r) => {
                self.issues
                    .push("telemetry.sampling_ratio", "must be between 0.0 and 1.0");
                defaults.sampling_ratio
            }
            Some(r) => r,
            None => defaults.sampling_ratio,
        };
        let service_name = match raw.service_name {
            Some(name) if name.trim().is_empty() => {
                self.issues
                    .push("telemetry.service_name", "must not be empty");
                defaults.service_name.clone()
            }
            Some(name) => name,
            None => defaults.service_name.clone(),
        };
        let export_timeout = self.millis(
            "telemetry",
            "export_timeout_ms",
            raw.export_timeout_ms,
            10_000,
        );
        let batch_size = self.positive_count("telemetry.batch_size", raw.batch_size, 512);
        let queue_size = self.positive_count("telemetry.queue_size", raw.queue_size, 2048);
        Some(TelemetrySettings {
            endpoint,
            headers: raw.headers,
            sampling_ratio,
            service_name,
            export_timeout,
            batch_size,
            queue_size,
            metrics_endpoint,
            metrics_interval,
        })
    }

    /// An OTLP/HTTP URL: `http(s)://host[:port]`, with `default_path` (`/v1/traces`,
    /// `/v1/metrics`) added when no path is given.
    fn otlp_url(&mut self, path: &str, endpoint: String, default_path: &str) -> String {
        let uri = match endpoint.parse::<Uri>() {
            Ok(uri) => uri,
            Err(e) => {
                self.issues.push(path, format!("is not a URL: {e}"));
                return endpoint;
            }
        };
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            self.issues
                .push(path, "must be an http:// or https:// URL with a host");
            return endpoint;
        }
        if uri.path() == "/" {
            format!("{}{default_path}", endpoint.trim_end_matches('/'))
        } else {
            endpoint
        }
    }

    fn positive_count(&mut self, path: &str, value: Option<usize>, default: usize) -> usize {
        match value {
            Some(0) => {
                self.issues.push(path, "must be greater than 0");
                default
            }
            Some(n) => n,
            None => default,
        }
    }
}
