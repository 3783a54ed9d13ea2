//! Request metrics (names and labels are listed in `docs/operations.md`). The exporter is
//! installed by `admin::install_metrics_recorder`; without one these are no-ops.
//!
//! The handles of each route's series are resolved once per worker thread and kept, so a request
//! costs a few atomic adds instead of building label sets and looking them up in the registry.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{Counter, Histogram};

/// Series of one route, resolved on first use on this thread.
struct RouteSeries {
    /// `tollgate_requests_total` by method label and status class.
    requests: [[Option<Counter>; STATUS_CLASSES.len()]; METHODS.len()],
    duration: Histogram,
    /// `tollgate_upstream_duration_seconds` by upstream.
    upstreams: Vec<(Box<str>, Histogram)>,
}

/// Routes beyond this many are not cached (a config has far fewer; this bounds reload churn).
const MAX_CACHED_ROUTES: usize = 4096;

thread_local! {
    static ROUTES: RefCell<HashMap<Box<str>, RouteSeries>> = RefCell::new(HashMap::new());
}

fn with_route<R>(route: &str, f: impl FnOnce(&mut RouteSeries) -> R) -> R {
    ROUTES.with(|routes| {
        let mut routes = routes.borrow_mut();
        if let Some(series) = routes.get_mut(route) {
            return f(series);
        }
        let mut series = RouteSeries {
            requests: Default::default(),
            duration: metrics::histogram!(
                "tollgate_request_duration_seconds",
                "route" => route.to_owned()
            ),
            upstreams: Vec::new(),
        };
        if routes.len() >= MAX_CACHED_ROUTES {
            return f(&mut series);
        }
        f(routes.entry(route.into()).or_insert(series))
    })
}

/// Count a finished request and record its duration.
pub fn record_request(route: Option<&str>, method: &Method, status: StatusCode, elapsed: Duration) {
    let route = route.unwrap_or("unmatched");
    let (m, s) = (method_index(method), status_index(status));
    with_route(route, |series| {
        let counter = series.requests[m][s].get_or_insert_with(|| {
            metrics::counter!(
                "tollgate_requests_total",
                "route" => route.to_owned(),
                "method" => METHODS[m],
                "status_class" => STATUS_CLASSES[s],
            )
        });
        counter.increment(1);
        series.duration.record(elapsed.as_secs_f64());
    });
}

/// Record how long the upstream took to send its response head.
pub fn record_upstream(route: Option<&str>, upstream: &str, elapsed: Duration) {
    let route = route.unwrap_or("unmatched");
    with_route(route, |series| {
        let position = series.upstreams.iter().position(|(u, _)| &**u == upstream);
        let index = position.unwrap_or_else(|| {
            let histogram = metrics::histogram!(
                "tollgate_upstream_duration_seconds",
                "route" => route.to_owned(),
                "upstream" => upstream.to_owned(),
            );
            series.upstreams.push((upstream.into(), histogram));
            series.upstreams.len() - 1
        });
        if let Some((_, histogram)) = series.upstreams.get(index) {
            histogram.record(elapsed.as_secs_f64());
        }
    });
}

/// Known methods by name; anything else as `other`, so clients cannot grow the label set.
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "other",
];

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::CONNECT => 8,
        _ => 9,
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_index(status: StatusCode) -> usize {
    match status.as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}
