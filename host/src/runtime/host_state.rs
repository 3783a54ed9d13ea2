//! What each instance's `Store` holds: the resource table through which the guest reaches the
//! request and response of the current call, a WASI context that grants nothing, the memory
//! limiter, and the shared state backend.
//!
//! WASI: a wasm32-wasip2 Rust guest imports WASI interfaces even when it uses none, so the host
//! links `wasmtime_wasi::p2` but the context grants nothing: no preopened directories, no
//! environment variables, no arguments, stdin empty, stdout and stderr discarded, TCP, UDP and
//! name lookup denied. Clocks and random work (harmless). Plugins log through the `log` import.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::clock::PluginClock;
use super::limiter::MemoryLimiter;
use super::state::StateBackend;
use crate::chain::{Fetcher, RequestState, ResponseState};

/// What the plugin declared in `init`: the host-side subset it enforces.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyAccess {
    pub(crate) request: bool,
    pub(crate) response: bool,
}

/// The request (and response) the current call works on, as handles into the table.
#[derive(Debug, Default)]
pub(crate) struct CallScope {
    /// Table index of the current request.
    pub(crate) request: Option<u32>,
    /// Table index of the current response (response phase only).
    pub(crate) response: Option<u32>,
    /// False in the response and log phases: request setters have no effect there.
    pub(crate) request_writable: bool,
    /// For log lines.
    pub(crate) request_id: Option<Arc<str>>,
}

/// The data of one instance's store.
pub(crate) struct HostState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) body: BodyAccess,
    pub(crate) scope: CallScope,
    pub(crate) state: Arc<dyn StateBackend>,
    /// Sends `http-client` requests.
    pub(crate) fetcher: Arc<dyn Fetcher>,
    /// Upstreams this plugin may fetch from (its `fetch` setting).
    pub(crate) fetch_allowed: Arc<[String]>,
    /// Time the current call spent waiting on host I/O (fetch). Not CPU: the epoch deadline
    /// callback credits it back, so a call's deadline measures the guest's own running time.
    pub(crate) host_wait: Duration,
    /// The first state backend failure of the current call (the plugin's `on_state_error`
    /// decides what it means for the request).
    pub(crate) state_error: Option<String>,
    /// What the `clock` import answers (the system clock, or a test kit's).
    pub(crate) clock: Arc<dyn PluginClock>,
    /// `crypto` keys this instance holds in its table (bounded).
    pub(crate) keys_held: usize,
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        memory_limit: usize,
        state: Arc<dyn StateBackend>,
        fetcher: Arc<dyn Fetcher>,
        fetch_allowed: Arc<[String]>,
        clock: Arc<dyn PluginClock>,
        guest_output_to_stderr: bool,
    ) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if guest_output_to_stderr {
            wasi.stdout(wasmtime_wasi::cli::stderr()).inherit_stderr();
        }
        let wasi = wasi.build();
        Self {
            table: ResourceTable::new(),
            wasi,
            limiter: MemoryLimiter::new(memory_limit),
            plugin,
            body: BodyAccess::default(),
            scope: CallScope::default(),
            state,
            fetcher,
            fetch_allowed,
            host_wait: Duration::ZERO,
            state_error: None,
            clock,
            keys_held: 0,
        }
    }

    /// The current request, if a call is in progress.
    pub(crate) fn current_request(&mut self) -> Option<&mut RequestState> {
        let rep = self.scope.request?;
        self.table
            .get_mut(&Resource::<RequestState>::new_borrow(rep))
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
