//! The plugin under test: loaded by the gateway's runtime with the sandbox limits and test
//! doubles of [`LoadOptions`], and run through its phases for one request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::error::TestError;
use super::input::{TestRequest, request_state, response_state, upstream_body};
use super::outcome::{Outcome, RequestView, ResponseView, context_changes, failed};
use crate::chain::{Chain, Flow, LogEntry, NoFetcher, RequestState};
use crate::config::{OnError, PluginSpec};
use crate::runtime::{
    LoadedPlugin, MemoryState, PluginCapabilities, PluginClock, Runtime, RuntimeOptions,
    StateBackend, SystemClock, WasmChain,
};

/// Sandbox limits and test doubles for the plugin under test.
pub struct LoadOptions {
    /// Linear memory cap per instance (the gateway's default is 32 MiB).
    pub memory_limit_mb: usize,
    /// CPU deadline per call (the gateway's default is 100 ms).
    pub timeout: Duration,
    /// Where compiled components are cached (`None`: compile every time).
    pub cache_dir: Option<PathBuf>,
    /// What the `clock` import answers.
    pub clock: Arc<dyn PluginClock>,
    /// Counters, values and token buckets the plugin sees through `state` (keys are
    /// `<name>:<key>`, `name` being the plugin's name below).
    pub state: Arc<dyn StateBackend>,
    /// The plugin's name (its `[plugins.NAME]`): namespaces its state keys and tags its logs.
    pub name: String,
    /// Let what the plugin prints (WASI stdout/stderr) through to this process's stderr.
    pub guest_output_to_stderr: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            memory_limit_mb: 32,
            timeout: Duration::from_millis(100),
            cache_dir: None,
            clock: Arc::new(SystemClock),
            state: Arc::new(MemoryState::new()),
            name: "plugin".to_owned(),
            guest_output_to_stderr: false,
        }
    }
}

/// A loaded plugin, ready to be fed requests.
pub struct PluginUnderTest {
    runtime: Runtime,
    plugin: Arc<LoadedPlugin>,
    chain: WasmChain,
}

impl std::fmt::Debug for PluginUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginUnderTest")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl PluginUnderTest {
    /// Load `module` (a component file) with `config_json` as its config, as the gateway would.
    pub async fn load(
        module: &Path,
        config_json: &str,
        opts: LoadOptions,
    ) -> Result<Self, TestError> {
        let memory_limit = opts.memory_limit_mb.saturating_mul(1 << 20);
        let runtime_opts = RuntimeOptions {
            cache_dir: opts.cache_dir,
            // One plugin, one or two instances: a small pool keeps the reservation small.
            max_instances: 8,
            guest_output_to_stderr: opts.guest_output_to_stderr,
            max_memory_bytes: (memory_limit as u64).max(RuntimeOptions::default().max_memory_bytes),
            ..RuntimeOptions::default()
        };
        let runtime =
            Runtime::with_clock(runtime_opts, opts.state, Arc::new(NoFetcher), opts.clock)
                .map_err(|e| TestError::Load(e.to_string()))?;
        let spec = PluginSpec {
            name: Arc::from(opts.name.as_str()),
            module: module.to_path_buf(),
            config_json: config_json.to_owned(),
            on_error: OnError::FailClosed,
            on_state_error: OnError::FailClosed,
            timeout: opts.timeout,
            memory_limit,
            pool_size: 1,
            max_instances: 64,
            fetch: Vec::new(),
            canary: None,
            version: Default::default(),
        };
        let plugin = runtime
            .load_plugin(&spec)
            .await
            .map_err(|e| TestError::Load(e.to_string()))?;
        let chain = WasmChain::new(vec![Arc::clone(&plugin)]);
        Ok(Self {
            runtime,
            plugin,
            chain,
        })
    }

    /// What the plugin declared in `init`.
    pub fn capabilities(&self) -> PluginCapabilities {
        self.plugin.capabilities()
    }

    /// The contract version the component targets (`0.1.0`, `0.2.0`).
    pub fn contract_version(&self) -> crate::runtime::ContractVersion {
        self.plugin.contract_version()
    }

    /// The state backend the plugin uses (seed counters before a call, read them after).
    pub fn state(&self) -> &Arc<dyn StateBackend> {
        self.runtime.state()
    }

    /// Run the phases the plugin takes part in for one request.
    pub async fn run(&self, input: &TestRequest) -> Result<Outcome, TestError> {
        let caps = self.plugin.capabilities();
        // A 0.2.0 plugin reads bodies on demand: here they are simply there.
        let on_demand = self.contract_version() != crate::runtime::ContractVersion::V0_1;
        let mut req = request_state(input, caps.request_body || on_demand)?;
        let before_context = req.context.clone();
        let upstream = input.response.clone().unwrap_or_default();
        let mut resp = response_state(&upstream, caps.response_body || on_demand)?;
        let mut phases = Vec::new();

        if caps.request {
            phases.push("request");
        }
        let outcome = match self.chain.on_request(&mut req).await {
            Ok(outcome) => outcome,
            Err(failure) => return Ok(failed(&req, &before_context, phases, "request", failure)),
        };
        let (action, response) = match outcome.flow {
            Flow::Respond(reply) => (
                "respond",
                ResponseView::new(reply.status, &reply.headers, &reply.body),
            ),
            Flow::Continue => {
                if caps.response {
                    phases.push("response");
                }
                match self
                    .chain
                    .on_response(&mut req, &mut resp, outcome.ran)
                    .await
                {
                    Ok(Flow::Respond(reply)) => (
                        "respond",
                        ResponseView::new(reply.status, &reply.headers, &reply.body),
                    ),
                    Ok(Flow::Continue) => (
                        "continue",
                        ResponseView::new(
                            resp.status,
                            &resp.headers,
                            resp.body
                                .as_deref()
                                .unwrap_or(upstream_body(&upstream)?.as_ref()),
                        ),
                    ),
                    Err(failure) => {
                        return Ok(failed(&req, &before_context, phases, "response", failure));
                    }
                }
            }
        };
        if caps.log {
            phases.push("log");
            self.log_phase(&req, action, &response).await;
        }
        Ok(Outcome {
            action,
            response: Some(response),
            request: RequestView::of(&req),
            context: context_changes(&before_context, &req.context),
            phases,
            failure: None,
        })
    }

    /// The log phase, with a log entry for `response` (from a `test-upstream:80` when the
    /// request went on).
    async fn log_phase(&self, req: &RequestState, action: &str, response: &ResponseView) {
        let entry = LogEntry {
            status: response.status,
            request_bytes: req.body.as_ref().map_or(0, |b| b.len() as u64),
            response_bytes: response.body.len() as u64,
            duration_micros: 0,
            upstream_micros: (action == "continue").then_some(0),
            upstream: (action == "continue").then(|| "test-upstream:80".to_owned()),
        };
        self.chain.on_log(req.clone(), entry).await;
    }
}
