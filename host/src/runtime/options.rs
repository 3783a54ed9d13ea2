//! Process-wide knobs of the Wasm runtime.

use std::path::PathBuf;
use std::time::Duration;

use super::limits::PluginLimits;

/// Sizing and limits of the runtime. The defaults suit a gateway with a handful of plugins, each
/// with up to 64 warm instances, plus head-room for bursts.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled plugins are cached as `<sha256>.cwasm`; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Most component instances alive at once across all plugins (warm and busy). Each takes a
    /// slot of the pooling allocator; instantiation beyond it fails with `unavailable`.
    pub max_instances: u32,
    /// Most core instances one component may hold (a wasm32-wasip2 Rust component holds 3-5).
    pub max_core_instances_per_component: u32,
    /// Most tables one component may hold.
    pub max_tables_per_component: u32,
    /// Most linear memories one component may hold.
    pub max_memories_per_component: u32,
    /// The largest `memory_limit` a plugin may ask for; also each memory slot's virtual
    /// reservation in the pool.
    pub max_memory_bytes: u64,
    /// Guest stack limit per call.
    pub max_wasm_stack: usize,
    /// Host fiber stack per call in flight (must exceed `max_wasm_stack`).
    pub async_stack_size: usize,
    /// Period of the epoch ticker: the granularity of call deadlines.
    pub epoch_tick: Duration,
    /// Most idle instances a plugin keeps (at least its `pool_size`).
    pub max_idle_per_plugin: usize,
    /// Most real time one phase of one request may spend deferred by plugins, counted from the
    /// first defer, before the chain answers 503 `deferred_too_long` (the count of defers is
    /// capped too: `limits.max_defers`).
    pub max_defer: Duration,
    /// Send what plugins print (WASI stdout and stderr: a Python traceback, `console.log`) to
    /// this process's stderr instead of discarding it. For `tollgate plugin test`; the gateway
    /// keeps it off (plugins log through the `log` import).
    pub guest_output_to_stderr: bool,
    /// Log-phase calls of one plugin in flight at once; past it a request's log call to that
    /// plugin is dropped and counted (`tollgate_plugin_log_dropped_total`).
    pub log_queue_per_plugin: usize,
    /// Caps on what plugins hand the host (headers, context, logs, metrics, state, fetch,
    /// defers, call time).
    pub limits: PluginLimits,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 1000,
            max_core_instances_per_component: 16,
            max_tables_per_component: 8,
            max_memories_per_component: 2,
            max_memory_bytes: 128 << 20,
            max_wasm_stack: 512 << 10,
            async_stack_size: 2 << 20,
            epoch_tick: Duration::from_millis(1),
            max_idle_per_plugin: 64,
            max_defer: Duration::from_secs(30),
            guest_output_to_stderr: false,
            log_queue_per_plugin: 1024,
            limits: PluginLimits::default(),
        }
    }
}
