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
        let endpoint = match raw.endpoint {
            Some(endpoint) => self.telemetry_endpoint(endpoint),
            None => {
                self.issues.push(
                    "telemetry.endpoint",
                    "is required: the collector's OTLP/HTTP URL, e.g. \"http://127.0.0.1:4318\"",
                );
                String::new()
            }
        };
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
        })
    }

    /// The traces URL: `http(s)://host[:port]`, with `/v1/traces` added when no path is given.
    fn telemetry_endpoint(&mut self, endpoint: String) -> String {
        let uri = match endpoint.parse::<Uri>() {
            Ok(uri) => uri,
            Err(e) => {
                self.issues
                    .push("telemetry.endpoint", format!("is not a URL: {e}"));
                return endpoint;
            }
        };
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            self.issues.push(
                "telemetry.endpoint",
                "must be an http:// or https:// URL with a host",
            );
            return endpoint;
        }
        if uri.path() == "/" {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
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
