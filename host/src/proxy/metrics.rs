//! Request metrics (names and labels are listed in `docs/operations.md`). The exporter is
//! installed by `admin::install_metrics_recorder`; without one these are no-ops.

use std::time::Duration;

use http::{Method, StatusCode};

/// Count a finished request and record its duration.
pub fn record_request(route: Option<&str>, method: &Method, status: StatusCode, elapsed: Duration) {
    let route = route.unwrap_or("unmatched").to_owned();
    metrics::counter!(
        "tollgate_requests_total",
        "route" => route.clone(),
        "method" => method_label(method),
        "status_class" => status_class(status),
    )
    .increment(1);
    metrics::histogram!("tollgate_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
}

/// Record how long the upstream took to send its response head.
pub fn record_upstream(route: Option<&str>, upstream: &str, elapsed: Duration) {
    metrics::histogram!(
        "tollgate_upstream_duration_seconds",
        "route" => route.unwrap_or("unmatched").to_owned(),
        "upstream" => upstream.to_owned(),
    )
    .record(elapsed.as_secs_f64());
}

/// Known methods by name; anything else as `other`, so clients cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
