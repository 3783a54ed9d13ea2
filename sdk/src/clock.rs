//! Time as the gateway sees it (plugins get no WASI clocks).

use crate::__private::tollgate::plugin::clock as raw;

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    raw::now_millis()
}

/// A monotonic clock in nanoseconds, for measuring intervals.
pub fn monotonic_nanos() -> u64 {
    raw::monotonic_nanos()
}
