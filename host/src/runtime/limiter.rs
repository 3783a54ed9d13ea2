//! Per-store memory cap that remembers it refused, so a failed call is reported as
//! `memory_limit` rather than as the trap the guest's allocator raises afterwards.

use wasmtime::ResourceLimiter;

/// Most elements a guest table may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Caps each linear memory of one store at `limit` bytes.
pub(crate) struct MemoryLimiter {
    limit: usize,
    refused: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            refused: false,
        }
    }

    /// True once a growth request was refused; the store is then never reused.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
