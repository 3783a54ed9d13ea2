//! Canary versions of a chain member (docs/rollout.md): which version serves a request (a
//! stable hash of the split key into 10,000 buckets), the version's state that outlives config
//! snapshots (active, rolled back, promoted), and the rollback rule's window of atomics.
//!
//! A member without a canary costs the chain one branch. The rule never takes a lock on a call:
//! counters are atomics, and the rule is judged on a canary failure and every 16th canary call.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::plugin::LoadedPlugin;
use super::stats::LatencyHistogram;
use crate::chain::RequestState;
use crate::config::{CanarySplit, RollbackRule};

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Buckets of the split: a canary at 10 % serves buckets 0..1000.
pub const BUCKETS: u64 = 10_000;

/// Where a canary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryStatus {
    /// Serves its share of the traffic.
    Active,
    /// Out of service (by the rule or by an operator) until the config names another canary.
    RolledBack,
    /// Serves all the traffic of its entry.
    Promoted,
}

impl CanaryStatus {
    /// `active`, `rolled_back` or `promoted`.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryStatus::Active => "active",
            CanaryStatus::RolledBack => "rolled_back",
            CanaryStatus::Promoted => "promoted",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => CanaryStatus::RolledBack,
            2 => CanaryStatus::Promoted,
            _ => CanaryStatus::Active,
        }
    }
}

/// One version's calls in the current window.
struct Window {
    calls: AtomicU64,
    failures: AtomicU64,
    latency: LatencyHistogram,
}

impl Window {
    fn new() -> Self {
        Self {
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latency: LatencyHistogram::new(),
        }
    }

    fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.latency.reset();
    }

    fn failure_percent(&self) -> (u64, f64) {
        let calls = self.calls.load(Ordering::Relaxed);
        let failures = self.failures.load(Ordering::Relaxed);
        let rate = if calls == 0 {
            0.0
        } else {
            failures as f64 * 100.0 / calls as f64
        };
        (calls, rate)
    }
}

/// The state of one canary (one entry, one canary module and config): lives in the gateway's
/// registry, outside the config snapshots, so a rolled-back canary stays out across reloads.
pub struct CanaryState {
    status: AtomicU8,
    /// Why it was rolled back or promoted, and when (Unix ms).
    reason: Mutex<Option<(String, u64)>>,
    started: Instant,
    window_start_ms: AtomicU64,
    /// [stable, canary]
    windows: [Window; 2],
    judging: AtomicBool,
}

impl std::fmt::Debug for CanaryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryState")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Default for CanaryState {
    fn default() -> Self {
        Self {
            status: AtomicU8::new(0),
            reason: Mutex::new(None),
            started: Instant::now(),
            window_start_ms: AtomicU64::new(0),
            windows: [Window::new(), Window::new()],
            judging: AtomicBool::new(false),
        }
    }
}

impl CanaryState {
    /// Where it stands.
    pub fn status(&self) -> CanaryStatus {
        CanaryStatus::from_u8(self.status.load(Ordering::Relaxed))
    }

    /// Why it was rolled back or promoted, and when (Unix milliseconds).
    pub fn reason(&self) -> Option<(String, u64)> {
        match self.reason.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Move from `from` to `to`; false when it was not in `from`.
    pub fn transition(&self, from: CanaryStatus, to: CanaryStatus, why: String) -> bool {
        if self
            .status
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let at = unix_ms();
        match self.reason.lock() {
            Ok(mut r) => *r = Some((why, at)),
            Err(p) => *p.into_inner() = Some((why, at)),
        }
        true
    }

    /// The window's (calls, failure %) of [stable, canary].
    pub fn window(&self) -> [(u64, f64); 2] {
        [
            self.windows[0].failure_percent(),
            self.windows[1].failure_percent(),
        ]
    }
}

/// The canary of a chain member, as this config snapshot has it.
pub struct Canary {
    pub(crate) plugin: Arc<LoadedPlugin>,
    basis_points: u64,
    split: CanarySplit,
    seed: u64,
    pub(crate) state: Arc<CanaryState>,
    rule: Option<RollbackRule>,
}

impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canary")
            .field("plugin", &self.plugin.name())
            .field("basis_points", &self.basis_points)
            .finish_non_exhaustive()
    }
}

/// FNV-1a, 64 bits: a hash that is the same in every process and version, so a consumer keeps
/// its version across gateways and restarts (std's hasher promises neither).
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser: spreads FNV's low bits, which decide the bucket.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn ip_bytes(ip: &IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

static REQUEST_SPLIT: AtomicU64 = AtomicU64::new(0);

impl Canary {
    /// The canary `plugin` of entry `name`, serving `basis_points` of 10,000 buckets.
    pub fn new(
        name: &str,
        plugin: Arc<LoadedPlugin>,
        basis_points: u32,
        split: CanarySplit,
        state: Arc<CanaryState>,
        rule: Option<RollbackRule>,
    ) -> Self {
        Self {
            plugin,
            basis_points: u64::from(basis_points),
            split,
            seed: fnv1a(0xcbf2_9ce4_8422_2325, name.as_bytes()),
            state,
            rule,
        }
    }

    /// The bucket (0..10,000) of this request's split key.
    pub fn bucket(&self, req: &RequestState) -> u64 {
        let by_ip = |ip: &IpAddr| fnv1a(self.seed, &ip_bytes(ip));
        let h = match &self.split {
            CanarySplit::Consumer => match req.context.get("consumer") {
                Some(c) if !c.is_empty() => fnv1a(self.seed, c.as_bytes()),
                _ => by_ip(&req.client_ip),
            },
            CanarySplit::ClientIp => by_ip(&req.client_ip),
            CanarySplit::Header(name) => match req.headers.get(name) {
                Some(v) => fnv1a(self.seed, v.as_bytes()),
                None => by_ip(&req.client_ip),
            },
            CanarySplit::Request => REQUEST_SPLIT.fetch_add(1, Ordering::Relaxed),
        };
        mix(h) % BUCKETS
    }

    /// Does the canary serve this request?
    pub(crate) fn serves(&self, req: &RequestState) -> bool {
        match self.state.status() {
            CanaryStatus::Active => self.bucket(req) < self.basis_points,
            CanaryStatus::Promoted => true,
            CanaryStatus::RolledBack => false,
        }
    }

    /// Count a request- or response-phase call of one version for the rule, and judge.
    pub(crate) fn record(&self, canary: bool, took: Duration, failed: bool) {
        let Some(rule) = &self.rule else { return };
        let state = &*self.state;
        let now = u64::try_from(state.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let start = state.window_start_ms.load(Ordering::Relaxed);
        let window_ms = u64::try_from(rule.window.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(start) >= window_ms
            && state
                .window_start_ms
                .compare_exchange(start, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            state.windows[0].reset();
            state.windows[1].reset();
        }
        let w = &state.windows[usize::from(canary)];
        let calls = w.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if failed {
            w.failures.fetch_add(1, Ordering::Relaxed);
        }
        w.latency
            .record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        if canary
            && (failed || calls.is_multiple_of(16))
            && calls >= rule.min_requests
            && state.status() == CanaryStatus::Active
            && !state.judging.swap(true, Ordering::Acquire)
        {
            let verdict = judge(state, rule);
            state.judging.store(false, Ordering::Release);
            if let Some(why) = verdict {
                self.roll_back(why, rule);
            }
        }
    }

    /// Take the canary out of service now, count it, log why and call the webhook.
    fn roll_back(&self, why: String, rule: &RollbackRule) {
        if !self
            .state
            .transition(CanaryStatus::Active, CanaryStatus::RolledBack, why.clone())
        {
            return;
        }
        let name = self.plugin.name();
        metrics::counter!("tollgate_canary_rollbacks_total", "plugin" => name.to_string())
            .increment(1);
        tracing::warn!(plugin = %name, module = %self.plugin.spec().module.display(), "canary rolled back: {why}");
        if let Some(url) = &rule.webhook {
            let event = serde_json::json!({
                "event": "canary_rolled_back",
                "plugin": &**name,
                "module": self.plugin.spec().module.display().to_string(),
                "reason": why,
                "at_unix_ms": unix_ms(),
            });
            super::canary_webhook::post(url.clone(), event);
        }
    }
}

/// Calls each version needs in the window before the p99 rule compares them: under 100 calls
/// a p99 is the slowest call, so one preemption of a thread would decide it.
const P99_MIN_CALLS: u64 = 100;

/// Why the rule takes the canary out, or `None`.
fn judge(state: &CanaryState, rule: &RollbackRule) -> Option<String> {
    let [stable, canary] = &state.windows;
    let (canary_calls, canary_rate) = canary.failure_percent();
    let (stable_calls, stable_rate) = stable.failure_percent();
    if let Some(points) = rule.max_error_rate_points
        && canary_rate - stable_rate > points
    {
        return Some(format!(
            "failure rate {canary_rate:.1} % over {canary_calls} calls is more than {points} points above the stable version's {stable_rate:.1} % ({stable_calls} calls)"
        ));
    }
    if let Some(ratio) = rule.max_p99_ratio
        && stable_calls >= P99_MIN_CALLS
        && canary_calls >= P99_MIN_CALLS
    {
        let c = canary.latency.quantile(0.99);
        let s = stable.latency.quantile(0.99);
        if c.as_secs_f64() > ratio * s.as_secs_f64() {
            return Some(format!(
                "p99 call time {:.3} ms over {canary_calls} calls is more than {ratio}x the stable version's {:.3} ms",
                c.as_secs_f64() * 1000.0,
                s.as_secs_f64() * 1000.0
            ));
        }
    }
    None
}

/// A place in a chain: the entry's stable version, and its canary when it has one.
#[derive(Debug, Clone)]
pub struct Member {
    /// The stable version.
    pub stable: Arc<LoadedPlugin>,
    /// The canary, if configured.
    pub canary: Option<Arc<Canary>>,
}

impl From<Arc<LoadedPlugin>> for Member {
    fn from(stable: Arc<LoadedPlugin>) -> Self {
        Self {
            stable,
            canary: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spreads() {
        assert_eq!(fnv1a(0xcbf2_9ce4_8422_2325, b"a"), 0xaf63_dc4c_8601_ec8c);
        let seed = fnv1a(0xcbf2_9ce4_8422_2325, b"plugin");
        let low = (0..10_000)
            .filter(|i| mix(fnv1a(seed, format!("consumer-{i}").as_bytes())) % BUCKETS < 1000)
            .count();
        assert!((900..1100).contains(&low), "{low}");
    }

    fn record(w: &Window, calls: u64, micros: u64) {
        for _ in 0..calls {
            w.calls.fetch_add(1, Ordering::Relaxed);
            w.latency.record(micros * 1000);
        }
    }

    #[test]
    fn p99_rule_waits_for_a_hundred_calls_of_each_version() {
        let rule = RollbackRule {
            max_error_rate_points: None,
            max_p99_ratio: Some(3.0),
            min_requests: 20,
            window: Duration::from_secs(60),
            webhook: None,
        };
        let state = CanaryState::default();
        let [stable, canary] = &state.windows;
        record(stable, 400, 50);
        // One slow call among 60 is the p99 of 60: not judged yet.
        record(canary, 59, 50);
        record(canary, 1, 7000);
        assert_eq!(judge(&state, &rule), None);
        // At 100 calls, one slow call is under the p99.
        record(canary, 40, 50);
        assert_eq!(judge(&state, &rule), None);
        // A canary that is slow throughout is taken out.
        record(canary, 100, 7000);
        let why = judge(&state, &rule).unwrap_or_default();
        assert!(why.contains("p99") && why.contains("200 calls"), "{why}");
    }
}
