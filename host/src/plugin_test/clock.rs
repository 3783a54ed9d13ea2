//! [`FixedClock`]: a clock the test sets and moves, for plugins that read the time.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::PluginClock;

/// A fixed clock that a test can move: `now_millis` is what was set, `monotonic_nanos` follows.
#[derive(Debug, Clone)]
pub struct FixedClock {
    millis: Arc<std::sync::atomic::AtomicU64>,
}

impl FixedClock {
    /// A clock that reads `millis` since the Unix epoch.
    pub fn new(millis: u64) -> Self {
        Self {
            millis: Arc::new(std::sync::atomic::AtomicU64::new(millis)),
        }
    }

    /// Set the time.
    pub fn set(&self, millis: u64) {
        self.millis
            .store(millis, std::sync::atomic::Ordering::SeqCst);
    }

    /// Move the time forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl PluginClock for FixedClock {
    fn now_millis(&self) -> u64 {
        self.millis.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn monotonic_nanos(&self) -> u64 {
        self.now_millis().saturating_mul(1_000_000)
    }
}
