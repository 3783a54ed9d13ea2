//! The one wasmtime engine of the process (its epoch ticker is in `ticker`).
//!
//! Features the gateway uses, and why:
//! - **epoch interruption**: a cheap (~5%) CPU deadline per call; a ticker thread advances the
//!   epoch every `epoch_tick` and each call sets its deadline in ticks.
//! - **pooling allocator**: instance slots, memories, tables and fiber stacks are preallocated,
//!   so creating a replacement instance costs tens of microseconds, not a few mmaps.
//! - **no component-model concurrency**: `call_async` then runs on a plain fiber, which is all
//!   the async `state` imports need (measured: +1.2 µs per call with it on).
//! - **no explicit bounds checks**: each memory slot is followed by enough guard pages that
//!   reservation + guard covers the 4 GiB a 32-bit index can reach plus 32 MiB for an access's
//!   offset and size, so Cranelift compiles loads and stores without a compare (and Spectre
//!   `cmov`) each; an access past the memory's end faults in the guard and traps. The memory
//!   limits stay where they were: `max_memory_size` and each plugin's `memory_limit` bound what
//!   a memory may grow to.

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::RuntimeError;
use super::options::RuntimeOptions;

/// Core instances per component budgeted in the pool's totals (wasip2 Rust: 3).
const TYPICAL_CORE_INSTANCES: u32 = 4;
/// Linear memories per component budgeted in the pool's totals (wasip2 Rust: 1).
const TYPICAL_MEMORIES: u32 = 1;
/// Tables per component budgeted in the pool's totals (wasip2 Rust: 2).
const TYPICAL_TABLES: u32 = 3;

/// Every address a 32-bit memory index can name.
const INDEX_SPAN: u64 = 1 << 32;
/// The guard wasmtime puts after a memory by default on 64-bit hosts; here, what lies past
/// [`INDEX_SPAN`] for the static offset and size of an access.
const DEFAULT_GUARD: u64 = 32 << 20;

/// Guard pages after each memory slot, so that the slot spans [`INDEX_SPAN`] plus
/// [`DEFAULT_GUARD`]. Cranelift omits an access's bounds check when any index plus the access's
/// offset and size stays within reservation + guard (`bounds_check_field_access` in
/// wasmtime-cranelift): with exactly 4 GiB, only 1-byte loads at offset 0 would qualify.
fn guard_size(reservation: u64) -> u64 {
    INDEX_SPAN.saturating_sub(reservation) + DEFAULT_GUARD
}

/// Build the engine from the options.
pub(crate) fn build_engine(opts: &RuntimeOptions) -> Result<Engine, RuntimeError> {
    let instances = opts.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // Totals follow what a wasm32-wasip2 Rust component holds (measured on the fixtures: 3 core
    // modules instantiated, 1 linear memory, 2 tables), with head-room; the per-component caps
    // below still admit bigger components, which then use more of the shared totals.
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(TYPICAL_CORE_INSTANCES))
        .total_memories(instances.saturating_mul(TYPICAL_MEMORIES))
        .total_tables(instances.saturating_mul(TYPICAL_TABLES))
        .total_stacks(instances)
        .max_core_instances_per_component(opts.max_core_instances_per_component)
        .max_memories_per_component(opts.max_memories_per_component)
        .max_tables_per_component(opts.max_tables_per_component)
        .max_memory_size(usize::try_from(opts.max_memory_bytes).unwrap_or(usize::MAX))
        // Keep the first 1 MiB of each memory resident when a slot is reused: a Rust guest's
        // stack and data live there, so a replacement instance does not page-fault them back.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10);

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .concurrency_support(false)
        .max_wasm_stack(opts.max_wasm_stack)
        .async_stack_size(opts.async_stack_size)
        // Each memory slot reserves the largest memory a plugin may have, and guard pages up to
        // 4 GiB + 32 MiB: 1000 slots take 4 TiB of address space (of the 128 TiB a process has),
        // none of it backed by memory, and the guest's loads and stores need no bounds checks.
        .memory_reservation(opts.max_memory_bytes)
        .memory_guard_size(guard_size(opts.max_memory_bytes))
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(RuntimeError::Engine)
}
