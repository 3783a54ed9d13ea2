//! Target health: active checks (a GET to each target every interval, with thresholds), passive
//! ejection (consecutive failed requests take a target out for a time that grows on repeats), the
//! state that survives reloads, and the report behind `GET /admin/upstreams`.
//!
//! A target receives traffic when it is *available*: healthy by active checks (always, when the
//! upstream has none) and not ejected. When no target is available the request fails fast with
//! 503 `no_healthy_upstream` (see `docs/upstreams.md` for why).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use http::{Request, Version};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{Clients, HttpClient};
use super::pool::UpstreamPool;
use super::retry::RetryBudget;
use crate::config::{HealthCheck, PassiveHealth, Upstream};
use crate::proxy::body::full;

/// Milliseconds since a process-wide start, never 0 (0 stands for "not ejected").
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(elapsed).unwrap_or(u64::MAX - 1) + 1
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One target's health and load. Shared by every routing table whose upstream lists it, so a
/// reload that keeps the target keeps its state.
#[derive(Debug)]
pub struct TargetState {
    addr: String,
    in_flight: AtomicUsize,
    /// By active checks; true when the upstream has none.
    healthy: AtomicBool,
    /// `now_ms()` until which the target is ejected; 0 when it is not.
    ejected_until: AtomicU64,
    consecutive_failures: AtomicU32,
    /// Set at ejection: the first failure after re-admission ejects again.
    probation: AtomicBool,
    log: Mutex<TargetLog>,
}

#[derive(Debug, Default)]
struct TargetLog {
    /// Ejection level: each ejection doubles the next one's length; it decays by one for every
    /// base ejection time spent without an ejection.
    level: u32,
    last_ejection_end: u64,
    ejections: u64,
    check_passes: u32,
    check_failures: u32,
    last_check: Option<LastCheck>,
}

#[derive(Debug, Clone)]
struct LastCheck {
    at: OffsetDateTime,
    ok: bool,
    status: Option<u16>,
    error: Option<String>,
}

impl TargetState {
    fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            probation: AtomicBool::new(false),
            log: Mutex::new(TargetLog::default()),
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Requests sent to this target whose response is not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn ejected_at(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    /// May this target receive a request now?
    pub fn available(&self, now: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.ejected_at(now)
    }

    fn lock(&self) -> MutexGuard<'_, TargetLog> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A request got a response that does not count as a failure.
    pub(crate) fn record_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.probation.load(Ordering::Relaxed) {
            self.probation.store(false, Ordering::Relaxed);
        }
    }

    /// A request failed (connect error, reset, timeout, or 5xx when so configured).
    pub(crate) fn record_failure(&self, upstream: &str, passive: &PassiveHealth) {
        let now = now_ms();
        if self.ejected_at(now) {
            // A request sent before the ejection: it says nothing new.
            return;
        }
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if passive.max_failures == 0 {
            return;
        }
        let on_probation = self.probation.load(Ordering::Relaxed);
        if failures >= passive.max_failures || on_probation {
            self.eject(upstream, passive, now);
        }
    }

    fn eject(&self, upstream: &str, passive: &PassiveHealth, now: u64) {
        let mut log = self.lock();
        if self.ejected_at(now) {
            return;
        }
        let base = millis(passive.ejection).max(1);
        let calm = now.saturating_sub(log.last_ejection_end) / base;
        let level = log
            .level
            .saturating_sub(u32::try_from(calm).unwrap_or(u32::MAX));
        let length = base
            .saturating_mul(1u64 << level.min(20))
            .min(millis(passive.max_ejection));
        log.level = level + 1;
        log.last_ejection_end = now + length;
        log.ejections += 1;
        drop(log);
        self.ejected_until.store(now + length, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.probation.store(true, Ordering::Relaxed);
        tracing::warn!(
            upstream,
            target = self.addr,
            ejected_ms = length,
            "upstream target ejected after failed requests"
        );
        metrics::counter!(
            "tollgate_upstream_ejections_total",
            "upstream" => upstream.to_owned(),
            "target" => self.addr.clone(),
        )
        .increment(1);
        self.publish(upstream);
        // The gauge follows the re-admission when the ejection runs out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let upstream = upstream.to_owned();
            let target = self.addr.clone();
            let healthy = self.healthy.load(Ordering::Relaxed);
            runtime.spawn(async move {
                tokio::time::sleep(Duration::from_millis(length)).await;
                gauge(&upstream, &target, healthy);
            });
        }
    }

    /// An active check's result.
    fn record_check(&self, upstream: &str, check: &HealthCheck, result: Result<u16, String>) {
        let ok = matches!(result, Ok(status) if check.passes(status));
        let (status, error) = match result {
            Ok(status) => (Some(status), None),
            Err(e) => (None, Some(e)),
        };
        let mut log = self.lock();
        log.last_check = Some(LastCheck {
            at: OffsetDateTime::now_utc(),
            ok,
            status,
            error: error.clone(),
        });
        let healthy = self.healthy.load(Ordering::Relaxed);
        let mut changed = false;
        if ok {
            log.check_failures = 0;
            log.check_passes = log.check_passes.saturating_add(1);
            if !healthy && log.check_passes >= check.healthy_threshold {
                self.healthy.store(true, Ordering::Relaxed);
                changed = true;
            }
            // A passing check re-admits a passively ejected target.
            if self.ejected_at(now_ms()) {
                self.ejected_until.store(0, Ordering::Relaxed);
                log.last_ejection_end = now_ms();
                changed = true;
            }
        } else {
            log.check_passes = 0;
            log.check_failures = log.check_failures.saturating_add(1);
            if healthy && log.check_failures >= check.unhealthy_threshold {
                self.healthy.store(false, Ordering::Relaxed);
                changed = true;
            }
        }
        drop(log);
        if changed {
            let now_healthy = self.healthy.load(Ordering::Relaxed);
            if now_healthy {
                tracing::info!(upstream, target = self.addr, "upstream target healthy");
            } else {
                tracing::warn!(
                    upstream,
                    target = self.addr,
                    status,
                    error,
                    "upstream target unhealthy"
                );
            }
            self.publish(upstream);
        }
    }

    /// Set the `tollgate_upstream_healthy` gauge from the current state.
    fn publish(&self, upstream: &str) {
        gauge(upstream, &self.addr, self.available(now_ms()));
    }

    fn report(&self, now: u64) -> Value {
        let log = self.lock();
        let until = self.ejected_until.load(Ordering::Relaxed);
        let ejected_until = (until > now).then(|| {
            let at = OffsetDateTime::now_utc()
                + time::Duration::milliseconds(i64::try_from(until - now).unwrap_or(i64::MAX));
            at.format(&Rfc3339).unwrap_or_default()
        });
        let last_check = log.last_check.as_ref().map(|c| {
            json!({
                "at": c.at.format(&Rfc3339).unwrap_or_default(),
                "ok": c.ok,
                "status": c.status,
                "error": c.error,
            })
        });
        json!({
            "target": self.addr,
            "healthy": self.healthy.load(Ordering::Relaxed),
            "available": self.available(now),
            "in_flight": self.in_flight(),
            "consecutive_failures": self.consecutive_failures.load(Ordering::Relaxed),
            "ejected_until": ejected_until,
            "ejections": log.ejections,
            "last_check": last_check,
        })
    }
}

fn gauge(upstream: &str, target: &str, available: bool) {
    metrics::gauge!(
        "tollgate_upstream_healthy",
        "upstream" => upstream.to_owned(),
        "target" => target.to_owned(),
    )
    .set(if available { 1.0 } else { 0.0 });
}

/// An upstream's live state: its targets (in config order) and its retry budget.
#[derive(Debug)]
pub struct UpstreamState {
    targets: Vec<Arc<TargetState>>,
    budget: Arc<RetryBudget>,
}

impl UpstreamState {
    /// Fresh state for `upstream`: every target healthy, none ejected.
    pub fn new(upstream: &Upstream) -> Self {
        Self::carried_over(upstream, None)
    }

    /// State for `upstream` keeping what `previous` knew about targets it still lists.
    fn carried_over(upstream: &Upstream, previous: Option<&UpstreamState>) -> Self {
        let targets = upstream
            .targets
            .iter()
            .map(|addr| {
                previous
                    .and_then(|p| p.targets.iter().find(|t| t.addr == *addr))
                    .cloned()
                    .unwrap_or_else(|| Arc::new(TargetState::new(addr)))
            })
            .collect::<Vec<_>>();
        if upstream.health_check.is_none() {
            // Without active checks nothing would ever mark them healthy again.
            for t in &targets {
                t.healthy.store(true, Ordering::Relaxed);
            }
        }
        Self {
            targets,
            budget: previous.map_or_else(Arc::default, |p| p.budget.clone()),
        }
    }

    /// Targets in config order.
    pub fn targets(&self) -> &[Arc<TargetState>] {
        &self.targets
    }

    /// The retry budget.
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }
}

/// Aborts a task when dropped: a health checker lives exactly as long as its registry entry.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Entry {
    spec: Upstream,
    state: Arc<UpstreamState>,
    _checker: Option<AbortOnDrop>,
}

/// The upstream states of the table being served, and their health-check tasks. Owned by
/// [`crate::proxy::Proxy`]; every table it serves is adopted first.
#[derive(Debug, Default)]
pub struct HealthRegistry {
    entries: HashMap<String, Entry>,
}

impl HealthRegistry {
    /// Give a table's upstreams (`pools`) their state: an unchanged upstream keeps its state and checker;
    /// a changed one keeps the state of the targets it still lists and gets a new checker; the
    /// checkers of upstreams that are gone stop.
    pub fn adopt<'a>(
        &mut self,
        pools: impl IntoIterator<Item = &'a Arc<UpstreamPool>>,
        clients: &Clients,
    ) {
        let mut old = std::mem::take(&mut self.entries);
        for pool in pools {
            let spec = pool.spec();
            let entry = match old.remove(spec.name.as_str()) {
                Some(entry) if entry.spec == *spec => entry,
                previous => {
                    let state = Arc::new(UpstreamState::carried_over(
                        spec,
                        previous.as_ref().map(|e| &*e.state),
                    ));
                    let checker = spec
                        .health_check
                        .clone()
                        .and_then(|check| spawn_checker(pool, &state, check, clients));
                    Entry {
                        spec: spec.clone(),
                        state,
                        _checker: checker,
                    }
                }
            };
            pool.adopt(entry.state.clone());
            for target in entry.state.targets() {
                target.publish(&spec.name);
            }
            self.entries.insert(spec.name.clone(), entry);
        }
        // `old` now holds removed upstreams: dropping it stops their checkers.
    }
}

fn spawn_checker(
    pool: &UpstreamPool,
    state: &Arc<UpstreamState>,
    check: HealthCheck,
    clients: &Clients,
) -> Option<AbortOnDrop> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let client = clients.get(pool);
    let state = state.clone();
    let upstream = pool.name().to_owned();
    Some(AbortOnDrop(
        runtime.spawn(run_checks(upstream, state, check, client)),
    ))
}

async fn run_checks(
    upstream: String,
    state: Arc<UpstreamState>,
    check: HealthCheck,
    client: HttpClient,
) {
    let mut ticker = tokio::time::interval(check.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let probes = state.targets().iter().map(|target| {
            let client = client.clone();
            let check = &check;
            let upstream = &upstream;
            async move {
                let result = probe(&client, target.addr(), check).await;
                target.record_check(upstream, check, result);
            }
        });
        futures_util::future::join_all(probes).await;
    }
}

/// One check: GET the path, read the body, all within the timeout.
async fn probe(client: &HttpClient, addr: &str, check: &HealthCheck) -> Result<u16, String> {
    let uri = format!("http://{addr}{}", check.path);
    let mut req = Request::new(full(bytes::Bytes::new()));
    *req.uri_mut() = uri.parse().map_err(|e| format!("bad check URI: {e}"))?;
    *req.version_mut() = Version::HTTP_11;
    req.headers_mut().insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("tollgate-health-check"),
    );
    let exchange = async {
        let response = client.request(req).await.map_err(|e| {
            if e.is_connect() {
                "connect failed".to_owned()
            } else {
                "exchange failed".to_owned()
            }
        })?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| "body failed".to_owned())?;
        Ok(status)
    };
    match tokio::time::timeout(check.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", millis(check.timeout))),
    }
}

/// `GET /admin/upstreams`: every upstream of the table being served (`pools`), with its targets'
/// health, load and ejection, and its retry counters.
pub fn report<'a>(pools: impl IntoIterator<Item = &'a Arc<UpstreamPool>>) -> Value {
    let now = now_ms();
    let mut pools: Vec<&Arc<UpstreamPool>> = pools.into_iter().collect();
    pools.sort_by(|a, b| a.name().cmp(b.name()));
    let mut upstreams = serde_json::Map::new();
    for pool in pools {
        let spec = pool.spec();
        let state = pool.shared();
        let health_check = spec.health_check.as_ref().map(|c| {
            json!({
                "path": c.path,
                "interval_ms": millis(c.interval),
                "timeout_ms": millis(c.timeout),
                "healthy_threshold": c.healthy_threshold,
                "unhealthy_threshold": c.unhealthy_threshold,
            })
        });
        let targets: Vec<Value> = state.targets().iter().map(|t| t.report(now)).collect();
        let available = state.targets().iter().filter(|t| t.available(now)).count();
        upstreams.insert(
            pool.name().to_owned(),
            json!({
                "balance": spec.balance.as_str(),
                "available_targets": available,
                "health_check": health_check,
                "passive": {
                    "max_failures": spec.passive.max_failures,
                    "ejection_ms": millis(spec.passive.ejection),
                    "eject_on_5xx": spec.passive.eject_on_5xx,
                },
                "retries": {
                    "max": spec.retry.retries,
                    "attempted": state.budget().retried(),
                    "budget_exhausted": state.budget().exhausted(),
                },
                "targets": targets,
            }),
        );
    }
    json!({ "upstreams": upstreams })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passive(max_failures: u32, ejection_ms: u64) -> PassiveHealth {
        PassiveHealth {
            max_failures,
            ejection: Duration::from_millis(ejection_ms),
            max_ejection: Duration::from_millis(ejection_ms * 4),
            eject_on_5xx: false,
        }
    }

    #[test]
    fn consecutive_failures_eject_and_success_resets() {
        let t = TargetState::new("a:1");
        let p = passive(3, 60_000);
        t.record_failure("u", &p);
        t.record_failure("u", &p);
        t.record_success();
        t.record_failure("u", &p);
        t.record_failure("u", &p);
        assert!(t.available(now_ms()));
        t.record_failure("u", &p);
        assert!(!t.available(now_ms()));
    }

    #[test]
    fn repeated_ejections_grow_up_to_the_cap() {
        let t = TargetState::new("a:1");
        let p = passive(1, 1_000);
        let mut lengths = Vec::new();
        for _ in 0..4 {
            let now = now_ms();
            t.record_failure("u", &p);
            let until = t.ejected_until.load(Ordering::Relaxed);
            lengths.push((until - now + 500) / 1000);
            // Pretend the ejection ran out (re-admission on probation).
            t.ejected_until.store(0, Ordering::Relaxed);
        }
        assert_eq!(lengths, [1, 2, 4, 4]);
    }

    #[test]
    fn passive_off_never_ejects() {
        let t = TargetState::new("a:1");
        for _ in 0..100 {
            t.record_failure("u", &passive(0, 1_000));
        }
        assert!(t.available(now_ms()));
    }

    #[test]
    fn checks_flip_health_at_the_thresholds() {
        let t = TargetState::new("a:1");
        let check = HealthCheck {
            path: "/health".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            expected_statuses: Vec::new(),
        };
        t.record_check("u", &check, Ok(503));
        t.record_check("u", &check, Err("connect failed".into()));
        assert!(t.available(now_ms()));
        t.record_check("u", &check, Ok(500));
        assert!(!t.available(now_ms()));
        t.record_check("u", &check, Ok(204));
        assert!(!t.available(now_ms()));
        t.record_check("u", &check, Ok(200));
        assert!(t.available(now_ms()));
    }
}
