//! `[state]`: where plugins' shared state lives.

use std::time::Duration;

/// `[state]`: the backend of the plugins' shared state (counters, values, token buckets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateSettings {
    /// In this process: exact, fast, lost on restart, not shared between gateways (default).
    #[default]
    Memory,
    /// In Redis, shared by every gateway with the same URL and key prefix.
    Redis {
        /// `redis://[user:password@]host:port[/db]` (validated by the client's URL parser).
        url: String,
        /// Bound on every state call.
        timeout: Duration,
        /// Prepended to every key.
        key_prefix: String,
    },
}

impl StateSettings {
    /// `memory` or `redis`, for logs and metric labels.
    pub fn backend_name(&self) -> &'static str {
        match self {
            StateSettings::Memory => "memory",
            StateSettings::Redis { .. } => "redis",
        }
    }
}
