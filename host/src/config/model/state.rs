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
        /// How long `add-many` updates wait to be sent together; zero sends each at once.
        write_behind: Duration,
    },
    /// In a Redis Cluster, shared by every gateway with the same nodes' cluster and key prefix;
    /// keys spread over the primaries by hash slot.
    RedisCluster {
        /// Seed node URLs, `redis://[user:password@]host:port` or all `rediss://` (validated).
        nodes: Vec<String>,
        /// Bound on every state call.
        timeout: Duration,
        /// Prepended to every key.
        key_prefix: String,
        /// How long `add-many` updates wait to be sent together; zero sends each at once.
        write_behind: Duration,
    },
}

impl StateSettings {
    /// `memory`, `redis` or `redis-cluster`, for logs and metric labels.
    pub fn backend_name(&self) -> &'static str {
        match self {
            StateSettings::Memory => "memory",
            StateSettings::Redis { .. } => "redis",
            StateSettings::RedisCluster { .. } => "redis-cluster",
        }
    }
}
