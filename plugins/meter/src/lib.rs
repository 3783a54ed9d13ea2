//! Tollgate built-in plugin `meter`: usage per consumer and route, counted in the log phase
//! (after the client has the response, off the latency path) into hourly buckets of shared state
//! counters, which the gateway's admin API reads back (`GET /admin/usage?consumer=...`).
//!
//! ```toml
//! [plugins.meter]
//! module = "meter"
//! config = { retention_days = 35 }
//! ```
//!
//! Per request it adds to `requests`, the status class (`status_2xx`, ...), `request_bytes`,
//! `response_bytes` and, when an upstream answered, `upstream_us` and `upstream_count`, under
//! `usage:<consumer>:<route>:<YYYYMMDDHH>:<field>` (see [`keys`]). The consumer is the
//! `consumer` context value set by an auth plugin, `anonymous` when there is none. All of a
//! request's counters are added with one `state::add_many` call, which does not wait for their
//! new values: with Redis the gateway sums them per key and sends them together every
//! `[state] write_behind_ms`, so a busy gateway's meter makes one round trip per interval, not
//! one per request.

mod config;
mod hour;
mod keys;

use config::{RawConfig, Settings};
use tollgate_sdk::{Capabilities, LogEntry, Plugin, clock, context, log, metrics, state};

/// The consumer name used for requests that no auth plugin identified.
const ANONYMOUS: &str = "anonymous";

struct Meter(Settings);

impl Meter {
    fn record(&self, consumer: &str, entry: &LogEntry) {
        let now = clock::now_millis();
        // Bucket by the request's arrival, so a long download counts in the hour it started.
        let arrived = now.saturating_sub(entry.duration_micros / 1000);
        // Keep the bucket `retention` past the end of its hour, whenever it is created.
        let ttl = (hour::end_of_hour(arrived) + self.0.retention_ms)
            .saturating_sub(now)
            .max(1);
        let (upstream_us, upstream_count) = entry.upstream_micros.map_or((0, 0), |us| (us, 1));
        let fields = [
            (keys::REQUESTS, 1),
            (keys::status_field(entry.status), 1),
            (keys::REQUEST_BYTES, entry.request_bytes),
            (keys::RESPONSE_BYTES, entry.response_bytes),
            (keys::UPSTREAM_US, upstream_us),
            (keys::UPSTREAM_COUNT, upstream_count),
        ];
        // Zero deltas are skipped; the rest go in one `add_many`, which does not wait for the
        // values. Their keys are written one after another into one buffer.
        let mut counted: Vec<(&str, i64)> = Vec::with_capacity(fields.len());
        counted.extend(
            fields
                .iter()
                .filter(|&&(_, value)| value > 0)
                .map(|&(field, value)| (field, i64::try_from(value).unwrap_or(i64::MAX))),
        );
        let bucket = keys::bucket(consumer, &entry.route, arrived);
        let keys = keys::Keys::new(&bucket, counted.iter().map(|&(field, _)| field));
        let ops: Vec<state::CounterAdd<'_>> = keys
            .iter()
            .zip(&counted)
            .map(|(key, &(_, delta))| state::CounterAdd {
                key,
                delta,
                ttl_ms: ttl,
            })
            .collect();
        if let Err(e) = state::add_many(&ops) {
            let names: Vec<&str> = counted.iter().map(|&(field, _)| field).collect();
            log::warn(&format!("meter: counting {}: {e}", names.join(", ")));
        }
    }

    fn export(&self, consumer: &str, entry: &LogEntry) {
        let route = ("route", entry.route.as_str());
        let class = ("status_class", keys::status_class(entry.status));
        let requests = |labels: &[(&str, &str)]| {
            metrics::counter_add("usage_requests", labels, 1);
        };
        let bytes = |labels: &[(&str, &str)]| {
            metrics::counter_add("usage_request_bytes", labels, entry.request_bytes);
            metrics::counter_add("usage_response_bytes", labels, entry.response_bytes);
        };
        if self.0.consumer_label {
            let consumer = ("consumer", consumer);
            requests(&[route, consumer, class]);
            bytes(&[route, consumer]);
        } else {
            requests(&[route, class]);
            bytes(&[route]);
        }
    }
}

impl Plugin for Meter {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(Meter)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().log()
    }

    fn on_log(&self, entry: &LogEntry) {
        let consumer = context::get("consumer")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| ANONYMOUS.to_owned());
        self.record(&consumer, entry);
        if self.0.metrics {
            self.export(&consumer, entry);
        }
    }
}

tollgate_sdk::export_plugin!(Meter);
