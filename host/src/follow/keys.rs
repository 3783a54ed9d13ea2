//! The control plane's key table on a gateway: each live key's SHA-256 and the identity it
//! stands for, written into the shared state under the namespace of every `auth` plugin that
//! reads keys from the control plane (`api_key.control = true`), as
//! `<plugin>:control-key:<sha256 hex>` → `{"consumer", "roles", "plan", "not_after_ms"}`, with
//! the key's expiry as TTL. Keys that left the table are deleted. The auth plugin reads them
//! with the ordinary `state` import: no contract change, and a plugin can only read its own
//! namespace.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::runtime::StateBackend;

/// One live key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// SHA-256 hex of the key.
    pub hash: String,
    /// Its consumer.
    pub consumer: String,
    /// The consumer's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The consumer's plan.
    #[serde(default)]
    pub plan: Option<String>,
    /// Refused from this instant (Unix ms).
    #[serde(default)]
    pub not_after_ms: Option<i64>,
}

/// The table as `GET /v1/node/keys` answers it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyTable {
    /// The key version it reflects.
    pub version: i64,
    /// Live keys.
    pub keys: Vec<KeyEntry>,
}

/// Names of the plugins whose config reads keys from the control plane.
pub fn namespaces(config: &Config) -> Vec<String> {
    config
        .plugins
        .values()
        .filter(|p| {
            serde_json::from_str::<serde_json::Value>(&p.config_json)
                .ok()
                .and_then(|c| c.get("api_key")?.get("control")?.as_bool())
                .unwrap_or(false)
        })
        .map(|p| p.name.to_string())
        .collect()
}

/// Write `new` under every namespace and delete what `old` had that `new` has not. Returns the
/// number of failed state calls (logged).
pub async fn sync(
    state: &dyn StateBackend,
    namespaces: &[String],
    old: &KeyTable,
    new: &KeyTable,
) -> usize {
    let now = crate::control::now_ms();
    let live: HashSet<&str> = new.keys.iter().map(|k| k.hash.as_str()).collect();
    let mut failures = 0;
    for ns in namespaces {
        for gone in old.keys.iter().filter(|k| !live.contains(k.hash.as_str())) {
            let key = format!("{ns}:control-key:{}", gone.hash);
            if let Err(e) = state.delete(&key).await {
                tracing::warn!(error = %e, "cannot remove a revoked key from the state");
                failures += 1;
            }
        }
        for entry in &new.keys {
            let ttl = match entry.not_after_ms {
                Some(t) if t <= now => continue,
                Some(t) => Some(Duration::from_millis(u64::try_from(t - now).unwrap_or(0))),
                None => None,
            };
            let value = serde_json::json!({"consumer": entry.consumer, "roles": entry.roles,
                "plan": entry.plan, "not_after_ms": entry.not_after_ms})
            .to_string();
            let key = format!("{ns}:control-key:{}", entry.hash);
            if let Err(e) = state.set(&key, &value, ttl).await {
                tracing::warn!(error = %e, "cannot write a key into the state");
                failures += 1;
            }
        }
    }
    failures
}
