//! Per-plugin call statistics: atomics for the admin API, `metrics` handles for Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Histogram};

use crate::chain::FailureKind;

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
}

/// Live counters of one plugin.
pub(crate) struct Stats {
    calls: AtomicU64,
    failures: [AtomicU64; 6],
    state_errors: AtomicU64,
    total_nanos: AtomicU64,
    last_nanos: AtomicU64,
    pub(crate) instances_created: AtomicU64,
    m_calls: Counter,
    m_failures: [Counter; 6],
    m_state_errors: [Counter; 2],
    m_seconds: [Histogram; 3],
}

impl Stats {
    /// Metric handles are resolved once here, so install the global recorder before loading.
    pub(crate) fn new(plugin: &str) -> Self {
        let name = plugin.to_owned();
        let histogram = |phase: Phase| metrics::histogram!("tollgate_plugin_call_seconds", "plugin" => name.clone(), "phase" => phase.as_str());
        Self {
            calls: AtomicU64::new(0),
            failures: Default::default(),
            total_nanos: AtomicU64::new(0),
            last_nanos: AtomicU64::new(0),
            instances_created: AtomicU64::new(0),
            state_errors: AtomicU64::new(0),
            m_state_errors: ["fail-closed", "fail-open"].map(|policy| {
                metrics::counter!("tollgate_plugin_state_errors_total", "plugin" => name.clone(), "policy" => policy)
            }),
            m_calls: metrics::counter!("tollgate_plugin_calls_total", "plugin" => name.clone()),
            m_failures: KINDS.map(|k| {
                metrics::counter!("tollgate_plugin_failures_total", "plugin" => name.clone(), "kind" => k.as_str())
            }),
            m_seconds: [histogram(Phase::Request), histogram(Phase::Response), histogram(Phase::Log)],
        }
    }

    pub(crate) fn call(&self, phase: Phase, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.last_nanos.store(nanos, Ordering::Relaxed);
        self.m_calls.increment(1);
        self.m_seconds[phase.index()].record(took.as_secs_f64());
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

    pub(crate) fn snapshot(&self, idle_instances: usize) -> PluginStats {
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
            instances_created: self.instances_created.load(Ordering::Relaxed),
            idle_instances,
        }
    }
}
