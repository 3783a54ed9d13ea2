//! The Wasm side: one wasmtime engine, compiled-plugin cache, warm instance pools, and the
//! [`crate::chain::Chain`] implementation that runs plugins.
//!
//! ```text
//! Runtime::new(opts, state)        engine (pooling, epoch deadlines), linker, compile cache
//!   └─ load_plugin(spec).await     compile or load .cwasm, instantiate + init pool_size instances
//!        └─ LoadedPlugin           warm pool, capabilities, fingerprint, stats
//! WasmChain::new(vec![plugins])    implements chain::Chain for the proxy
//! ```
//!
//! Sandbox: each instance has its own `Store` with a memory cap (`memory_limit`), each call a CPU
//! deadline (`timeout`, epoch ticks of 1 ms), a 512 KiB wasm stack, and WASI that grants nothing
//! (see `host_state`). A call that traps, times out or hits the memory cap drops its instance.

mod bindings;
mod cache;
mod canary;
mod canary_webhook;
mod clock;
pub mod compile_process;
mod crypto;
mod engine;
mod error;
mod host_imports;
mod host_request;
mod host_state;
mod imports_v2;
mod in_place_imports;
mod limiter;
mod limits;
mod metric_handles;
mod options;
mod plugin;
mod pool;
mod redaction;
mod response_headers;
#[allow(clippy::module_inception)]
mod runtime;
mod state;
mod state_v2;
mod stats;
mod ticker;
mod wall_clock;
mod wasm_chain;

pub use bindings::ContractVersion;
pub use cache::CompileSource;
pub use canary::{Canary, CanaryState, CanaryStatus, Member, unix_ms};
pub use clock::{PluginClock, SystemClock};
pub use error::RuntimeError;
pub use limits::PluginLimits;
pub use options::RuntimeOptions;
pub use plugin::{LoadedPlugin, PluginCapabilities, PluginFingerprint};
pub use runtime::Runtime;
pub use state::{
    MemoryState, RedisClusterOptions, RedisOptions, RedisState, StateBackend, StateError,
    StateFuture, TakeOutcome, TokenBucket, WriteBehind,
};
pub use stats::PluginStats;
pub use wasm_chain::WasmChain;
