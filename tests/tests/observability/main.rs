//! Observability: OTLP trace export to a real OTLP/HTTP receiver, what a down or slow collector
//! costs the requests (nothing), and the shipped Grafana dashboard and Prometheus rules against a
//! real gateway's `/metrics`;
//! OTLP metrics export to a real receiver.

#![allow(clippy::unwrap_used)]

mod collector_down_or_slow_never_slows_requests;
mod dashboard_and_alerts_name_real_metrics;
mod metrics_exported_over_otlp;
mod request_through_three_plugins_is_one_trace;
mod support;
mod zero_sampling_exports_nothing;
