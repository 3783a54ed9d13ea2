//! Where the `clock` import gets its time. The gateway uses the system clock; the plugin test
//! kit (`tollgate plugin test --now-ms`, `tollgate::plugin_test`) sets a fixed or stepped one so a
//! plugin's time-dependent decisions (token expiry, stale signatures) can be tested.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Time as plugins see it through the `clock` import.
pub trait PluginClock: Send + Sync + 'static {
    /// Wall-clock time: milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
    /// A monotonic clock in nanoseconds.
    fn monotonic_nanos(&self) -> u64;
}

/// The real clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

impl PluginClock for SystemClock {
    fn now_millis(&self) -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    fn monotonic_nanos(&self) -> u64 {
        u64::try_from(process_start().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
