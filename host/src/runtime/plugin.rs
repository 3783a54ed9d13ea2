//! A loaded plugin: its compiled component, what it declared in `init`, and a pool of warm,
//! initialised instances, each in its own `Store` with the plugin's memory cap.
//!
//! An instance serves one phase call at a time and goes back to the pool afterwards, so linear
//! memory persists between calls of the same instance (plugins must keep shared state behind the
//! `state` import). An instance whose call trapped, timed out or hit the memory cap is dropped,
//! never reused; the pool creates a replacement on demand (instantiate + `init`).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Resource;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{Action, LogEntry as WitLogEntry, Phases, Plugin, PluginPre};
use super::cache::{CompileSource, hex};
use super::host_state::{BodyAccess, CallScope, HostState};
use super::runtime::RuntimeInner;
use super::stats::{Phase, PluginStats, Stats};
use crate::chain::{FailureKind, PluginFailure, RequestState, ResponseState};
use crate::config::{OnError, PluginSpec};

/// What a plugin declared in `init`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginCapabilities {
    /// Takes part in the request phase.
    pub request: bool,
    /// Takes part in the response phase.
    pub response: bool,
    /// Takes part in the log phase.
    pub log: bool,
    /// Needs the buffered request body.
    pub request_body: bool,
    /// Needs the buffered response body.
    pub response_body: bool,
}

/// Identifies a plugin's code, config and limits: two specs with the same fingerprint can share
/// one [`LoadedPlugin`] (and its warm pool) across a reload.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PluginFingerprint([u8; 32]);

impl PluginFingerprint {
    pub(crate) fn new(spec: &PluginSpec, content_hash: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(spec.name.as_bytes());
        h.update([0]);
        h.update(content_hash);
        h.update((spec.config_json.len() as u64).to_le_bytes());
        h.update(spec.config_json.as_bytes());
        h.update([matches!(spec.on_error, OnError::FailOpen) as u8]);
        h.update([matches!(spec.on_state_error, OnError::FailOpen) as u8]);
        h.update(spec.timeout.as_nanos().to_le_bytes());
        h.update((spec.memory_limit as u64).to_le_bytes());
        h.update((spec.pool_size as u64).to_le_bytes());
        for upstream in &spec.fetch {
            h.update((upstream.len() as u64).to_le_bytes());
            h.update(upstream.as_bytes());
        }
        Self(h.finalize().into())
    }
}

impl fmt::Debug for PluginFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PluginFingerprint({})", hex(&self.0))
    }
}

impl fmt::Display for PluginFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// One warm instance.
pub(crate) struct Warm {
    store: Store<HostState>,
    bindings: Plugin,
}

/// Why creating an instance failed.
pub(crate) enum NewInstanceError {
    Instantiate(String),
    Init(String),
}

/// Which export to call, with what.
pub(crate) enum PhaseCall<'a> {
    Request,
    Response(&'a mut ResponseState),
    Log(&'a WitLogEntry),
}

impl PhaseCall<'_> {
    /// `request`, `response` or `log`, for spans.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            PhaseCall::Request => "request",
            PhaseCall::Response(_) => "response",
            PhaseCall::Log(_) => "log",
        }
    }
}

/// A plugin ready to serve: compiled, initialised, with warm instances.
pub struct LoadedPlugin {
    pub(crate) rt: Arc<RuntimeInner>,
    spec: PluginSpec,
    fingerprint: PluginFingerprint,
    compile_source: CompileSource,
    pre: PluginPre<HostState>,
    caps: PluginCapabilities,
    idle: Mutex<Vec<Warm>>,
    max_idle: usize,
    deadline_ticks: u64,
    stats: Stats,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.spec.name)
            .field("fingerprint", &self.fingerprint)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

fn ticks(timeout: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    // +1: the epoch may advance right after the deadline is set.
    u64::try_from(timeout.as_nanos().div_ceil(tick))
        .unwrap_or(u64::MAX / 2)
        .saturating_add(1)
}

/// `init` may parse config or compile patterns: give it ten call deadlines, at least a second.
fn init_ticks(timeout: Duration, tick: Duration) -> u64 {
    ticks(timeout.saturating_mul(10).max(Duration::from_secs(1)), tick)
}

/// Instantiate and `init` one instance.
pub(crate) async fn new_instance(
    rt: &RuntimeInner,
    pre: &PluginPre<HostState>,
    spec: &PluginSpec,
) -> Result<(Warm, PluginCapabilities), NewInstanceError> {
    let data = HostState::new(
        Arc::clone(&spec.name),
        spec.memory_limit,
        Arc::clone(&rt.state),
        Arc::clone(&rt.fetcher),
        Arc::from(spec.fetch.as_slice()),
        Arc::clone(&rt.clock),
        rt.opts.guest_output_to_stderr,
    );
    let mut store = Store::new(&rt.engine, data);
    store.limiter(|s| &mut s.limiter);
    // At the deadline, give back the ticks the call spent waiting on host I/O (a `fetch`), once;
    // with nothing to give back, the call is interrupted (a timeout).
    let tick = rt.opts.epoch_tick.as_nanos().max(1);
    store.epoch_deadline_callback(move |mut ctx| {
        let waited = std::mem::take(&mut ctx.data_mut().host_wait);
        let credit = u64::try_from(waited.as_nanos() / tick).unwrap_or(u64::MAX / 2);
        Ok(if credit > 0 {
            UpdateDeadline::Continue(credit)
        } else {
            UpdateDeadline::Interrupt
        })
    });
    store.set_epoch_deadline(init_ticks(spec.timeout, rt.opts.epoch_tick));
    let bindings = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| NewInstanceError::Instantiate(failure_message(&e, &store)))?;
    let caps = match bindings.call_init(&mut store, &spec.config_json).await {
        Ok(Ok(caps)) => caps,
        Ok(Err(message)) => return Err(NewInstanceError::Init(message)),
        Err(e) => {
            return Err(NewInstanceError::Init(format!(
                "init failed: {}",
                failure_message(&e, &store)
            )));
        }
    };
    let caps = PluginCapabilities {
        request: caps.phases.contains(Phases::REQUEST),
        response: caps.phases.contains(Phases::RESPONSE),
        log: caps.phases.contains(Phases::LOG),
        request_body: caps.request_body,
        response_body: caps.response_body,
    };
    store.data_mut().body = BodyAccess {
        request: caps.request_body,
        response: caps.response_body,
    };
    Ok((Warm { store, bindings }, caps))
}

fn classify(e: &wasmtime::Error, store: &Store<HostState>) -> FailureKind {
    if store.data().limiter.refused() {
        FailureKind::MemoryLimit
    } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        FailureKind::Timeout
    } else {
        FailureKind::Trap
    }
}

fn failure_message(e: &wasmtime::Error, store: &Store<HostState>) -> String {
    match classify(e, store) {
        FailureKind::MemoryLimit => "the plugin exceeded its memory limit".to_owned(),
        FailureKind::Timeout => "the plugin ran past its deadline".to_owned(),
        _ => match e.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => e.to_string(),
        },
    }
}

impl LoadedPlugin {
    pub(crate) fn new(
        rt: Arc<RuntimeInner>,
        spec: PluginSpec,
        fingerprint: PluginFingerprint,
        compile_source: CompileSource,
        pre: PluginPre<HostState>,
        caps: PluginCapabilities,
        warm: Vec<Warm>,
    ) -> Self {
        let max_idle = spec.pool_size.max(rt.opts.max_idle_per_plugin).max(1);
        let deadline_ticks = ticks(spec.timeout, rt.opts.epoch_tick);
        let stats = Stats::new(&spec.name);
        stats
            .instances_created
            .fetch_add(warm.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Self {
            rt,
            spec,
            fingerprint,
            compile_source,
            pre,
            caps,
            idle: Mutex::new(warm),
            max_idle,
            deadline_ticks,
            stats,
        }
    }

    /// The plugin's name in the config.
    pub fn name(&self) -> &Arc<str> {
        &self.spec.name
    }

    /// The spec it was loaded from.
    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// Code + config + limits: equal fingerprints mean the plugin can be reused across a reload.
    pub fn fingerprint(&self) -> PluginFingerprint {
        self.fingerprint
    }

    /// The contract version the component targets.
    pub fn contract_version(&self) -> super::ContractVersion {
        self.pre.version()
    }

    /// What the plugin declared in `init`.
    pub fn capabilities(&self) -> PluginCapabilities {
        self.caps
    }

    /// Where its compiled code came from when it was loaded.
    pub fn compile_source(&self) -> CompileSource {
        self.compile_source
    }

    /// Statistics since it was loaded.
    pub fn stats(&self) -> PluginStats {
        let idle = self.idle.lock().map(|v| v.len()).unwrap_or(0);
        self.stats.snapshot(idle)
    }

    /// Count a request answered directly by this plugin (for metrics and the admin API).
    pub(crate) fn record_response(&self, route: &str, status: u16) {
        self.stats.responded(&self.spec.name, route, status);
    }

    pub(crate) fn on_error(&self) -> OnError {
        self.spec.on_error
    }

    pub(crate) fn failure(&self, kind: FailureKind, message: String) -> PluginFailure {
        self.stats.failure(kind);
        PluginFailure {
            plugin: Arc::clone(&self.spec.name),
            kind,
            message,
        }
    }

    async fn checkout(&self) -> Result<Warm, PluginFailure> {
        if let Some(w) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(w);
        }
        match new_instance(&self.rt, &self.pre, &self.spec).await {
            Ok((w, _)) => {
                self.stats
                    .instances_created
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(w)
            }
            Err(NewInstanceError::Instantiate(m) | NewInstanceError::Init(m)) => Err(self.failure(
                FailureKind::Unavailable,
                format!("cannot create an instance: {m}"),
            )),
        }
    }

    fn checkin(&self, w: Warm) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(w);
        }
    }

    /// Call one phase export on a pooled instance. The request (and response) move into the
    /// instance's table for the call and come back afterwards, also when the call failed.
    pub(crate) async fn call(
        &self,
        req: &mut RequestState,
        call: PhaseCall<'_>,
    ) -> Result<Option<Action>, PluginFailure> {
        let mut w = self.checkout().await?;
        let started = Instant::now();
        let (phase, log_entry, resp) = match call {
            PhaseCall::Request => (Phase::Request, None, None),
            PhaseCall::Response(resp) => (Phase::Response, None, Some(resp)),
            PhaseCall::Log(entry) => (Phase::Log, Some(entry), None),
        };
        let request_id = Arc::clone(&req.request_id);
        let table = &mut w.store.data_mut().table;
        let req_res = table
            .push(std::mem::take(req))
            .map_err(|e| self.failure(FailureKind::Unavailable, e.to_string()))?;
        let (resp_slot, resp_res) = match resp {
            Some(resp) => {
                let pushed = table.push(std::mem::take(resp));
                match pushed {
                    Ok(r) => (Some(resp), Some(r)),
                    Err(e) => {
                        if let Ok(r) = table.delete(req_res) {
                            *req = r;
                        }
                        return Err(self.failure(FailureKind::Unavailable, e.to_string()));
                    }
                }
            }
            None => (None, None),
        };
        let data = w.store.data_mut();
        data.scope = CallScope {
            request: Some(req_res.rep()),
            response: resp_res.as_ref().map(Resource::rep),
            request_writable: phase == Phase::Request,
            request_id: Some(request_id),
        };
        data.host_wait = Duration::ZERO;
        data.state_error = None;
        w.store.set_epoch_deadline(self.deadline_ticks);

        let req_borrow = Resource::new_borrow(req_res.rep());
        let result = match (log_entry, &resp_res) {
            (Some(entry), _) => w
                .bindings
                .call_on_log(&mut w.store, entry)
                .await
                .map(|()| None),
            (None, Some(resp)) => w
                .bindings
                .call_on_response(&mut w.store, req_borrow, Resource::new_borrow(resp.rep()))
                .await
                .map(Some),
            (None, None) => w
                .bindings
                .call_on_request(&mut w.store, req_borrow)
                .await
                .map(Some),
        };

        let data = w.store.data_mut();
        data.scope = CallScope::default();
        let state_error = data.state_error.take();
        if let Ok(r) = data.table.delete(req_res) {
            *req = r;
        }
        if let (Some(slot), Some(res)) = (resp_slot, resp_res)
            && let Ok(r) = data.table.delete(res)
        {
            *slot = r;
        }
        self.stats.call(phase, started.elapsed());
        if let Some(message) = &state_error {
            let closed = self.spec.on_state_error == OnError::FailClosed;
            self.stats.state_error(closed);
            tracing::warn!(plugin = %self.spec.name, phase = phase.as_str(), fail_closed = closed, "state backend failed during the call: {message}");
        }
        match result {
            // The log phase has no request left to fail; the error is counted above.
            Ok(action) if phase != Phase::Log => {
                self.checkin(w);
                match state_error {
                    Some(message) if self.spec.on_state_error == OnError::FailClosed => {
                        Err(self.failure(FailureKind::StateUnavailable, message))
                    }
                    _ => Ok(action),
                }
            }
            Ok(action) => {
                self.checkin(w);
                Ok(action)
            }
            Err(e) => {
                let kind = classify(&e, &w.store);
                let message = failure_message(&e, &w.store);
                // `w` is dropped here: a failed instance is never reused.
                Err(self.failure(kind, message))
            }
        }
    }
}
