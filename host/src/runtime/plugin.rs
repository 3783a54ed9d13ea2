//! A loaded plugin: its compiled component, what it declared in `init`, and a pool of warm,
//! initialised instances, each in its own `Store` with the plugin's memory cap.
//!
//! An instance serves one phase call at a time and goes back to the pool afterwards, so linear
//! memory persists between calls of the same instance (plugins must keep shared state behind the
//! `state` import). An instance whose call trapped, timed out or hit the memory cap is dropped,
//! never reused, and so is one whose call was abandoned mid-way (the request's future dropped
//! when its client went away); the pool creates a replacement on demand (instantiate + `init`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{Action, LogEntry as WitLogEntry, Phases, Plugin, PluginPre};
use super::cache::{CompileSource, hex};
use super::host_state::{
    BodyAccess, CallScope, FetchBudget, HostEnv, HostState, PluginShared, Slots,
};
use super::limits::{Limit, exceeded};
use super::pool::{Factory, Lease, Pool};
use super::runtime::RuntimeInner;
use super::stats::{Phase, PluginStats, Stats};
use super::wall_clock::WallClock;
use crate::chain::{FailureKind, PluginFailure, RequestState, ResponseState};
use crate::config::{OnError, PluginSpec, PluginVersion};

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
    /// The fingerprint of `spec` loading a module whose SHA-256 is `content_hash`.
    pub fn new(spec: &PluginSpec, content_hash: &[u8; 32]) -> Self {
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
        h.update((spec.max_instances as u64).to_le_bytes());
        for upstream in &spec.fetch {
            h.update((upstream.len() as u64).to_le_bytes());
            h.update(upstream.as_bytes());
        }
        // A canary never shares a pool (or statistics) with its stable version.
        if spec.version == PluginVersion::Canary {
            h.update(b"canary");
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
    /// Calls this instance served before (for traces: a warm, reused instance or a new one).
    served: u64,
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
    caps: PluginCapabilities,
    /// The contract version the component targets.
    version: super::ContractVersion,
    pool: Arc<Pool>,
    /// How long a call waits for an instance when none is idle.
    checkout_wait: Duration,
    /// Log-phase calls in flight or queued; past it, log calls are dropped and counted.
    pub(crate) log_slots: Arc<tokio::sync::Semaphore>,
    /// Instances log calls may hold at once: half of `max_instances` when the plugin also has a
    /// request or response phase, so a slow log phase cannot starve the requests of instances.
    pub(crate) log_instances: tokio::sync::Semaphore,
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

/// The shortest time a call waits for an instance when none is idle (a replacement takes tens
/// of microseconds plus the plugin's `init`).
const MIN_CHECKOUT_WAIT: Duration = Duration::from_millis(100);

/// How many instances log calls may hold at once (see [`LoadedPlugin::log_instances`]).
fn log_instance_share(spec: &PluginSpec, caps: &PluginCapabilities) -> usize {
    let max = spec.max_instances.max(spec.pool_size).max(1);
    if caps.request || caps.response {
        (max / 2).max(1)
    } else {
        max
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
    shared: &Arc<PluginShared>,
) -> Result<(Warm, PluginCapabilities), NewInstanceError> {
    let data = HostState::new(HostEnv {
        plugin: Arc::clone(&spec.name),
        memory_limit: spec.memory_limit,
        state: Arc::clone(&rt.state),
        fetcher: Arc::clone(&rt.fetcher),
        fetch_allowed: Arc::from(spec.fetch.as_slice()),
        clock: Arc::clone(&rt.clock),
        guest_output_to_stderr: rt.opts.guest_output_to_stderr,
        limits: rt.opts.limits.clone(),
        shared: Arc::clone(shared),
    });
    let mut store = Store::new(&rt.engine, data);
    store.limiter(|s| &mut s.limiter);
    // What one import call (or an export's result) may copy out of the plugin: no more than its
    // own memory limit. A list that names the same buffer many times would otherwise be lifted
    // into up to wasmtime's default of 128 MiB of host memory per call in flight.
    store.set_hostcall_fuel(spec.memory_limit);
    // The epoch deadline fires every tick while the guest runs: each firing spends one tick of
    // the call's budget (after crediting back time spent waiting on host I/O) and, while budget
    // is left, yields to the async runtime so a spinning plugin delays only its own request.
    // Calls shorter than a tick never get here.
    let tick = rt.opts.epoch_tick.as_nanos().max(1);
    store.epoch_deadline_callback(move |mut ctx| {
        let data = ctx.data_mut();
        let waited = std::mem::take(&mut data.host_wait);
        let credit = u64::try_from(waited.as_nanos() / tick).unwrap_or(u64::MAX / 2);
        data.ticks_left = data.ticks_left.saturating_add(credit);
        if data.ticks_left <= 1 {
            data.ticks_left = 0;
            return Ok(UpdateDeadline::Interrupt);
        }
        data.ticks_left -= 1;
        // tokio's `yield_now`, not a bare self-wake: it lets the runtime poll its I/O driver
        // before resuming the plugin, so other connections on this worker make progress.
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    store.data_mut().ticks_left = init_ticks(spec.timeout, rt.opts.epoch_tick);
    let _ticking = rt.ticker.running();
    store.set_epoch_deadline(1);
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
    Ok((
        Warm {
            store,
            bindings,
            served: 0,
        },
        caps,
    ))
}

/// Exchange the request (and response) with the instance's table slots; a second swap undoes
/// the first. Nothing is swapped when either slot is missing.
fn swap_slots(
    table: &mut ResourceTable,
    slots: Slots,
    req: &mut RequestState,
    resp: Option<&mut ResponseState>,
) -> Result<(), String> {
    let missing = |e: wasmtime::component::ResourceTableError| format!("instance table: {e}");
    if let Some(resp) = resp {
        table
            .get(&Resource::<RequestState>::new_borrow(slots.request))
            .map_err(missing)?;
        let slot = table
            .get_mut(&Resource::<ResponseState>::new_borrow(slots.response))
            .map_err(missing)?;
        std::mem::swap(slot, resp);
    }
    let slot = table
        .get_mut(&Resource::<RequestState>::new_borrow(slots.request))
        .map_err(missing)?;
    std::mem::swap(slot, req);
    Ok(())
}

fn classify(e: &wasmtime::Error, store: &Store<HostState>) -> FailureKind {
    if let Some((kind, _)) = &store.data().violation {
        *kind
    } else if store.data().limiter.refused() {
        FailureKind::MemoryLimit
    } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        FailureKind::Timeout
    } else {
        FailureKind::Trap
    }
}

fn failure_message(e: &wasmtime::Error, store: &Store<HostState>) -> String {
    if let Some((_, message)) = &store.data().violation {
        return message.clone();
    }
    match classify(e, store) {
        FailureKind::MemoryLimit => "the plugin exceeded its memory limit".to_owned(),
        FailureKind::Timeout => "the plugin ran past its deadline".to_owned(),
        // The cause, not the wasm backtrace wrapped around it (e.g. wasmtime's "too much data
        // is being copied between the host and the guest" past the hostcall fuel).
        _ => match e.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        },
    }
}

impl LoadedPlugin {
    /// `factory` makes replacement instances; `warm` are the ones made at load.
    pub(crate) fn new(
        factory: Factory,
        fingerprint: PluginFingerprint,
        compile_source: CompileSource,
        caps: PluginCapabilities,
        warm: Vec<Warm>,
    ) -> Self {
        let rt = Arc::clone(&factory.rt);
        let spec = factory.spec.clone();
        let max_idle = spec.pool_size.max(rt.opts.max_idle_per_plugin).max(1);
        let deadline_ticks = ticks(spec.timeout, rt.opts.epoch_tick);
        let stats = Stats::new(&spec.name, spec.version);
        let checkout_wait = spec.timeout.max(MIN_CHECKOUT_WAIT);
        let version = factory.pre.version();
        let pool = Pool::new(factory, warm, max_idle);
        let log_slots = Arc::new(tokio::sync::Semaphore::new(rt.opts.log_queue_per_plugin));
        let log_instances = tokio::sync::Semaphore::new(log_instance_share(&spec, &caps));
        Self {
            rt,
            spec,
            fingerprint,
            compile_source,
            caps,
            version,
            pool,
            checkout_wait,
            log_slots,
            log_instances,
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
        self.version
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
        self.stats.snapshot(self.pool.idle(), self.pool.created())
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

    async fn checkout(&self, lease: &mut Lease<'_>) -> Result<Warm, PluginFailure> {
        lease
            .checkout(self.checkout_wait)
            .await
            .map_err(|m| self.failure(FailureKind::Unavailable, m))
    }

    /// Call one phase export on a pooled instance. The request (and response) are swapped into
    /// the instance's table slots for the call and back afterwards, also when the call failed.
    pub(crate) async fn call(
        &self,
        req: &mut RequestState,
        call: PhaseCall<'_>,
        budget: &mut FetchBudget,
    ) -> Result<Option<Action>, PluginFailure> {
        // Every path below hands the instance back through the lease; if this future is dropped
        // mid-call instead, the lease gives the instance's slot back (see `Lease`).
        let mut lease = self.pool.lease();
        let mut w = self.checkout(&mut lease).await?;
        let started = Instant::now();
        let reused = w.served > 0;
        w.served += 1;
        let (phase, log_entry, mut resp) = match call {
            PhaseCall::Request => (Phase::Request, None, None),
            PhaseCall::Response(resp) => (Phase::Response, None, Some(resp)),
            PhaseCall::Log(entry) => (Phase::Log, Some(entry), None),
        };
        let data = w.store.data_mut();
        let slots = data.slots;
        if let Err(e) = swap_slots(&mut data.table, slots, req, resp.as_deref_mut()) {
            // The instance is dropped: its table no longer holds what a call needs.
            lease.discard(w);
            return Err(self.failure(FailureKind::Unavailable, e));
        }
        data.scope = CallScope {
            request: Some(slots.request),
            response: resp.as_ref().map(|_| slots.response),
            request_writable: phase == Phase::Request,
        };
        data.host_wait = Duration::ZERO;
        data.state_error = None;
        data.fetched = *budget;
        data.violation = None;
        data.ticks_left = self.deadline_ticks;
        let ticking = self.rt.ticker.running();
        w.store.set_epoch_deadline(1);

        let req_borrow = Resource::new_borrow(slots.request);
        let exports = async {
            match (log_entry, resp.is_some()) {
                (Some(entry), _) => w
                    .bindings
                    .call_on_log(&mut w.store, entry)
                    .await
                    .map(|()| None),
                (None, true) => w
                    .bindings
                    .call_on_response(
                        &mut w.store,
                        req_borrow,
                        Resource::new_borrow(slots.response),
                    )
                    .await
                    .map(Some),
                (None, false) => w
                    .bindings
                    .call_on_request(&mut w.store, req_borrow)
                    .await
                    .map(Some),
            }
        };
        let max_time = self.rt.opts.limits.max_call_time;
        let result = WallClock::new(std::pin::pin!(exports), started + max_time).await;
        drop(ticking);
        let timed_out = result.is_none();
        let result = result.unwrap_or_else(|| {
            Err(wasmtime::Error::msg(format!(
                "the call took longer than {} ms (waits included)",
                max_time.as_millis()
            )))
        });

        let data = w.store.data_mut();
        data.scope = CallScope::default();
        *budget = data.fetched;
        if timed_out {
            exceeded(&self.spec.name, Limit::CallTime);
            data.violation = Some((
                FailureKind::Timeout,
                format!(
                    "the call took longer than {} ms (waits included)",
                    max_time.as_millis()
                ),
            ));
        }
        let state_error = data.state_error.take();
        if let Err(e) = swap_slots(&mut data.table, slots, req, resp) {
            lease.discard(w);
            return Err(self.failure(FailureKind::Unavailable, e));
        }
        self.stats.call(phase, started.elapsed());
        if let Some(message) = &state_error {
            let closed = self.spec.on_state_error == OnError::FailClosed;
            self.stats.state_error(closed);
            tracing::warn!(plugin = %self.spec.name, phase = phase.as_str(), fail_closed = closed, "state backend failed during the call: {message}");
        }
        let outcome = match result {
            // The log phase has no request left to fail; the error is counted above.
            Ok(action) if phase != Phase::Log => {
                lease.checkin(w);
                match state_error {
                    Some(message) if self.spec.on_state_error == OnError::FailClosed => {
                        Err(self.failure(FailureKind::StateUnavailable, message))
                    }
                    _ => Ok(action),
                }
            }
            Ok(action) => {
                lease.checkin(w);
                Ok(action)
            }
            Err(e) => {
                let kind = classify(&e, &w.store);
                let message = failure_message(&e, &w.store);
                // A failed instance is never reused; a replacement is made off the request path.
                lease.discard(w);
                Err(self.failure(kind, message))
            }
        };
        if let Some(trace) = req.trace.as_deref_mut() {
            trace.plugin(
                &self.spec.name,
                phase.as_str(),
                outcome_name(&outcome),
                reused,
                started,
            );
        }
        outcome
    }
}

/// How a call ended, for its span: the action, or the failure's kind.
fn outcome_name(outcome: &Result<Option<Action>, PluginFailure>) -> &'static str {
    match outcome {
        Ok(None | Some(Action::Continue)) => "continue",
        Ok(Some(Action::Respond(_))) => "respond",
        Ok(Some(Action::Defer(_))) => "defer",
        Err(failure) => failure.kind.as_str(),
    }
}
