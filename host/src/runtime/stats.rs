//! Per-plugin call statistics: atomics for the admin API (`GET /admin/plugins`), `metrics`
//! handles for Prometheus. Call times also go into a small log-scale histogram of atomics (four
//! buckets per power of two, so a percentile is within about 12% of the true value) for the p50
//! and p99 the admin API reports without a Prometheus server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Histogram, Label};

use crate::chain::FailureKind;
use crate::config::PluginVersion;

/// A phase of the chain, for the per-phase latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Request,
    Response,
    Log,
}

impl Phase {
    fn index(self) -> usize {
        match self {
            Phase::Request => 0,
            Phase::Response => 1,
            Phase::Log => 2,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Response => "response",
            Phase::Log => "log",
        }
    }
}

const KINDS: [FailureKind; 6] = [
    FailureKind::Trap,
    FailureKind::Timeout,
    FailureKind::MemoryLimit,
    FailureKind::BadAction,
    FailureKind::Unavailable,
    FailureKind::StateUnavailable,
];

fn kind_index(kind: FailureKind) -> usize {
    match kind {
        FailureKind::Trap => 0,
        FailureKind::Timeout => 1,
        FailureKind::MemoryLimit => 2,
        FailureKind::BadAction => 3,
        FailureKind::Unavailable => 4,
        FailureKind::StateUnavailable => 5,
    }
}

/// A snapshot of one plugin's statistics since it was loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginStats {
    /// Phase calls made (successful or not).
    pub calls: u64,
    /// Calls that trapped.
    pub traps: u64,
    /// Calls that ran past their deadline.
    pub timeouts: u64,
    /// Calls that hit the memory cap.
    pub memory_limits: u64,
    /// Calls that returned an unusable action.
    pub bad_actions: u64,
    /// Calls that could not get an instance.
    pub unavailable: u64,
    /// Calls during which the state backend failed (whatever the `on_state_error` policy).
    pub state_errors: u64,
    /// Requests failed (503) because of such a failure under `on_state_error = "fail-closed"`.
    pub state_unavailable: u64,
    /// Sum of call durations.
    pub total_call_time: Duration,
    /// Duration of the most recent call.
    pub last_call_time: Duration,
    /// Instances created (at load and as replacements).
    pub instances_created: u64,
    /// Warm instances idle in the pool right now.
    pub idle_instances: usize,
    /// Median call time (all phases), estimated from the histogram; zero before any call.
    pub p50_call_time: Duration,
    /// 99th percentile call time (all phases); zero before any call.
    pub p99_call_time: Duration,
    /// Request-phase answers given directly (`respond`), i.e. short-circuits.
    pub responses: u64,
}

impl PluginStats {
    /// Failed calls of every kind (traps, timeouts, memory, bad actions, unavailable, state).
    pub fn errors(&self) -> u64 {
        self.traps
            + self.timeouts
            + self.memory_limits
            + self.bad_actions
            + self.unavailable
            + self.state_unavailable
    }
}

/// Buckets of [`LatencyHistogram`]: values below 4 ns have their own; above, four per power of two.
const LATENCY_BUCKETS: usize = 256;

/// Call times in nanoseconds, bucketed on a log scale with lock-free counters.
pub(crate) struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(nanos: u64) -> usize {
        if nanos < 4 {
            return nanos as usize;
        }
        let power = 63 - nanos.leading_zeros() as usize; // >= 2
        let sub = ((nanos >> (power - 2)) & 3) as usize;
        4 * (power - 1) + sub
    }

    /// The middle of bucket `i`, in nanoseconds.
    fn midpoint(i: usize) -> u64 {
        if i < 4 {
            return i as u64;
        }
        let power = i / 4 + 1;
        let sub = (i % 4) as u64;
        let low = (4 + sub) << (power - 2);
        let width = 1u64 << (power - 2);
        low.saturating_add(width / 2)
    }

    /// Forget every recorded value (a new window starts).
    pub(crate) fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn record(&self, nanos: u64) {
        self.buckets[Self::index(nanos)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `q` quantile (0..=1); zero when nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        // The rank of the quantile, 1-based: p99 of 100 calls is the 99th.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(Self::midpoint(i));
            }
        }
        Duration::ZERO
    }
}

/// Live counters of one plugin.
pub(crate) struct Stats {
    calls: AtomicU64,
    failures: [AtomicU64; 6],
    state_errors: AtomicU64,
    total_nanos: AtomicU64,
    last_nanos: AtomicU64,
    latency: LatencyHistogram,
    responses: AtomicU64,
    m_calls: Counter,
    m_failures: [Counter; 6],
    m_state_errors: [Counter; 2],
    m_seconds: [Histogram; 3],
}

impl Stats {
    /// Metric handles are resolved once here, so install the global recorder before loading.
    /// A canary's series carry `version="canary"` beside the plugin's name.
    pub(crate) fn new(plugin: &str, version: PluginVersion) -> Self {
        let labels = |extra: &[(&'static str, &'static str)]| {
            let mut l = vec![Label::new("plugin", plugin.to_owned())];
            if version == PluginVersion::Canary {
                l.push(Label::new("version", "canary"));
            }
            l.extend(extra.iter().map(|(k, v)| Label::new(*k, *v)));
            l
        };
        let histogram = |phase: Phase| {
            metrics::histogram!(
                "tollgate_plugin_call_seconds",
                labels(&[("phase", phase.as_str())])
            )
        };
        Self {
            calls: AtomicU64::new(0),
            failures: Default::default(),
            total_nanos: AtomicU64::new(0),
            last_nanos: AtomicU64::new(0),
            latency: LatencyHistogram::new(),
            responses: AtomicU64::new(0),
            state_errors: AtomicU64::new(0),
            m_state_errors: ["fail-closed", "fail-open"].map(|policy| {
                metrics::counter!(
                    "tollgate_plugin_state_errors_total",
                    labels(&[("policy", policy)])
                )
            }),
            m_calls: metrics::counter!("tollgate_plugin_calls_total", labels(&[])),
            m_failures: KINDS.map(|k| {
                metrics::counter!(
                    "tollgate_plugin_failures_total",
                    labels(&[("kind", k.as_str())])
                )
            }),
            m_seconds: [
                histogram(Phase::Request),
                histogram(Phase::Response),
                histogram(Phase::Log),
            ],
        }
    }

    pub(crate) fn call(&self, phase: Phase, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.last_nanos.store(nanos, Ordering::Relaxed);
        self.latency.record(nanos);
        self.m_calls.increment(1);
        self.m_seconds[phase.index()].record(took.as_secs_f64());
    }

    /// The plugin answered a request directly on route `route` (a short-circuit). Labelled by
    /// route and status class; a 429 also counts as a rate-limit rejection.
    pub(crate) fn responded(&self, plugin: &str, route: &str, status: u16) {
        self.responses.fetch_add(1, Ordering::Relaxed);
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        metrics::counter!(
            "tollgate_plugin_responses_total",
            "plugin" => plugin.to_owned(),
            "route" => route.to_owned(),
            "status_class" => class,
        )
        .increment(1);
        if status == 429 {
            metrics::counter!(
                "tollgate_rate_limited_total",
                "plugin" => plugin.to_owned(),
                "route" => route.to_owned(),
            )
            .increment(1);
        }
    }

    pub(crate) fn failure(&self, kind: FailureKind) {
        self.failures[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
        self.m_failures[kind_index(kind)].increment(1);
    }

    /// A call saw a state backend failure; `closed` when the plugin's policy fails the request.
    pub(crate) fn state_error(&self, closed: bool) {
        self.state_errors.fetch_add(1, Ordering::Relaxed);
        self.m_state_errors[usize::from(!closed)].increment(1);
    }

    pub(crate) fn snapshot(&self, idle_instances: usize, instances_created: u64) -> PluginStats {
        let f = |k| self.failures[kind_index(k)].load(Ordering::Relaxed);
        PluginStats {
            calls: self.calls.load(Ordering::Relaxed),
            traps: f(FailureKind::Trap),
            timeouts: f(FailureKind::Timeout),
            memory_limits: f(FailureKind::MemoryLimit),
            bad_actions: f(FailureKind::BadAction),
            unavailable: f(FailureKind::Unavailable),
            state_errors: self.state_errors.load(Ordering::Relaxed),
            state_unavailable: f(FailureKind::StateUnavailable),
            total_call_time: Duration::from_nanos(self.total_nanos.load(Ordering::Relaxed)),
            last_call_time: Duration::from_nanos(self.last_nanos.load(Ordering::Relaxed)),
            instances_created,
            idle_instances,
            p50_call_time: self.latency.quantile(0.50),
            p99_call_time: self.latency.quantile(0.99),
            responses: self.responses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for nanos in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            9,
            1_000,
            1_500,
            999_999,
            1 << 40,
            u64::MAX,
        ] {
            let i = LatencyHistogram::index(nanos);
            assert!(i >= last && i < LATENCY_BUCKETS, "{nanos}");
            last = i;
            let mid = LatencyHistogram::midpoint(i) as f64;
            let error = (mid - nanos as f64).abs() / (nanos as f64).max(1.0);
            assert!(error <= 0.13, "{nanos}: midpoint {mid}");
        }
    }

    #[test]
    fn quantiles_follow_the_data() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        for _ in 0..98 {
            h.record(10_000); // 10 µs
        }
        h.record(5_000_000); // 5 ms
        h.record(5_000_000);
        let p50 = h.quantile(0.5).as_nanos() as f64;
        let p99 = h.quantile(0.99).as_nanos() as f64;
        assert!((p50 - 10_000.0).abs() / 10_000.0 < 0.13, "{p50}");
        assert!((p99 - 5_000_000.0).abs() / 5_000_000.0 < 0.13, "{p99}");
    }
}
