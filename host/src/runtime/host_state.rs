//! What each instance's `Store` holds: the resource table through which the guest reaches the
//! request and response of the current call, a WASI context that grants nothing, the memory
//! limiter, and the shared state backend.
//!
//! WASI: a wasm32-wasip2 Rust guest imports WASI interfaces even when it uses none, so the host
//! links `wasmtime_wasi::p2` but the context grants nothing: no preopened directories, no
//! environment variables, no arguments, stdin empty, stdout and stderr discarded, TCP, UDP and
//! name lookup denied. Clocks and random work (harmless). Plugins log through the `log` import.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::clock::PluginClock;
use super::limiter::MemoryLimiter;
use super::limits::{Limit, PluginLimits, exceeded};
use super::metric_handles::MetricHandles;
use super::state::StateBackend;
use crate::chain::{FailureKind, Fetcher, RequestState, ResponseState};

/// What the plugin declared in `init`: the host-side subset it enforces.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyAccess {
    pub(crate) request: bool,
    pub(crate) response: bool,
}

/// The request (and response) the current call works on, as handles into the table.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallScope {
    /// Table index of the current request.
    pub(crate) request: Option<u32>,
    /// Table index of the current response (response phase only).
    pub(crate) response: Option<u32>,
    /// False in the response and log phases: request setters have no effect there.
    pub(crate) request_writable: bool,
}

/// The two table entries every call uses, pushed once per instance: a call swaps the proxy's
/// request (and response) into them and back out, so no call allocates a table entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    pub(crate) request: u32,
    pub(crate) response: u32,
}

/// The data of one instance's store.
pub(crate) struct HostState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) body: BodyAccess,
    pub(crate) scope: CallScope,
    /// Where the request and response live in `table` (see [`Slots`]).
    pub(crate) slots: Slots,
    pub(crate) state: Arc<dyn StateBackend>,
    /// Sends `http-client` requests.
    pub(crate) fetcher: Arc<dyn Fetcher>,
    /// Upstreams this plugin may fetch from (its `fetch` setting).
    pub(crate) fetch_allowed: Arc<[String]>,
    /// Time the current call spent waiting on host I/O (fetch). Not CPU: the epoch deadline
    /// callback credits it back, so a call's deadline measures the guest's own running time.
    pub(crate) host_wait: Duration,
    /// Epoch ticks the current call may still run (see the deadline callback in `plugin`).
    pub(crate) ticks_left: u64,
    /// The first state backend failure of the current call (the plugin's `on_state_error`
    /// decides what it means for the request).
    pub(crate) state_error: Option<String>,
    /// What the `clock` import answers (the system clock, or a test kit's).
    pub(crate) clock: Arc<dyn PluginClock>,
    /// `crypto` keys this instance holds in its table (bounded).
    pub(crate) keys_held: usize,
    /// `redaction` policies this instance holds in its table (bounded).
    pub(crate) policies_held: usize,
    /// Caps on what the plugin hands the host.
    pub(crate) limits: PluginLimits,
    pub(crate) shared: Arc<PluginShared>,
    /// A cap the current call broke badly enough to fail it (the host trapped the guest).
    pub(crate) violation: Option<(FailureKind, String)>,
    /// Fetches made in the current phase of the current request (carried across defers).
    pub(crate) fetched: FetchBudget,
    /// Handles of the metric series this instance recorded.
    pub(crate) metric_handles: MetricHandles,
}

/// What an instance's host side is made from.
pub(crate) struct HostEnv {
    pub(crate) plugin: Arc<str>,
    pub(crate) memory_limit: usize,
    pub(crate) state: Arc<dyn StateBackend>,
    pub(crate) fetcher: Arc<dyn Fetcher>,
    pub(crate) fetch_allowed: Arc<[String]>,
    pub(crate) clock: Arc<dyn PluginClock>,
    pub(crate) guest_output_to_stderr: bool,
    pub(crate) limits: PluginLimits,
    pub(crate) shared: Arc<PluginShared>,
}

/// Shared by every instance of one plugin.
#[derive(Debug, Default)]
pub(crate) struct PluginShared {
    /// Hashes of the metric series (name + labels) the plugin created, up to its cap.
    pub(crate) metric_series: Mutex<HashSet<u64>>,
}

/// What the plugin's fetches used in the current phase of the current request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FetchBudget {
    pub(crate) requests: u32,
    pub(crate) bytes: u64,
}

impl HostState {
    /// A host for import tests: the plugin `plugin` on `state`, 1 MiB of memory, no fetches,
    /// the system clock and default limits.
    #[cfg(test)]
    pub(crate) fn for_tests(plugin: &str, state: Arc<dyn StateBackend>) -> Self {
        Self::new(HostEnv {
            plugin: plugin.into(),
            memory_limit: 1 << 20,
            state,
            fetcher: Arc::new(crate::chain::NoFetcher),
            fetch_allowed: Arc::from(Vec::new()),
            clock: Arc::new(super::clock::SystemClock),
            guest_output_to_stderr: false,
            limits: PluginLimits::default(),
            shared: Arc::default(),
        })
    }

    pub(crate) fn new(env: HostEnv) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if env.guest_output_to_stderr {
            wasi.stdout(wasmtime_wasi::cli::stderr()).inherit_stderr();
        }
        let wasi = wasi.build();
        let mut table = ResourceTable::new();
        let slots = Slots {
            request: table.push(RequestState::default()).map_or(0, |r| r.rep()),
            response: table.push(ResponseState::default()).map_or(1, |r| r.rep()),
        };
        Self {
            table,
            slots,
            wasi,
            limiter: MemoryLimiter::new(env.memory_limit),
            plugin: env.plugin,
            body: BodyAccess::default(),
            scope: CallScope::default(),
            state: env.state,
            fetcher: env.fetcher,
            fetch_allowed: env.fetch_allowed,
            host_wait: Duration::ZERO,
            ticks_left: 0,
            state_error: None,
            clock: env.clock,
            keys_held: 0,
            policies_held: 0,
            limits: env.limits,
            shared: env.shared,
            violation: None,
            fetched: FetchBudget::default(),
            metric_handles: MetricHandles::default(),
        }
    }

    /// Fail the current call for a cap: the trap this returns ends the call, and the call's
    /// failure carries `message` (see `plugin::classify`).
    pub(crate) fn violate(&mut self, limit: Limit, message: String) -> wasmtime::Error {
        exceeded(&self.plugin, limit);
        let error = wasmtime::Error::msg(message.clone());
        self.violation
            .get_or_insert((FailureKind::BadAction, message));
        error
    }

    /// The request id of the current call, for log lines.
    pub(crate) fn request_id(&mut self) -> Arc<str> {
        self.current_request()
            .map(|r| Arc::clone(&r.request_id))
            .unwrap_or_else(|| Arc::from(""))
    }

    /// The current request, if a call is in progress.
    pub(crate) fn current_request(&mut self) -> Option<&mut RequestState> {
        let rep = self.scope.request?;
        self.table
            .get_mut(&Resource::<RequestState>::new_borrow(rep))
            .ok()
    }

    /// The current request, read-only (for imports that hold borrows of the guest's memory).
    pub(crate) fn current_request_ref(&self) -> Option<&RequestState> {
        let rep = self.scope.request?;
        self.table
            .get(&Resource::<RequestState>::new_borrow(rep))
            .ok()
    }

    /// The current response, if a response-phase call is in progress.
    #[allow(dead_code)]
    pub(crate) fn current_response(&mut self) -> Option<&mut ResponseState> {
        let rep = self.scope.response?;
        self.table
            .get_mut(&Resource::<ResponseState>::new_borrow(rep))
            .ok()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
