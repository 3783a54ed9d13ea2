//! Builds what a config asks for: the plugin runtime with its state backend, the access log,
//! and the routing table with one chain of loaded plugins per route (reusing unchanged ones).

use std::collections::HashMap;
use std::sync::Arc;

use super::error::GatewayError;
use crate::chain::{Chain, Fetcher};
use crate::config::{self, Config, ConfigIssue, StateSettings};
use crate::proxy::RoutingTable;
use crate::runtime::{
    LoadedPlugin, MemoryState, PluginFingerprint, RedisClusterOptions, RedisOptions, RedisState,
    Runtime, RuntimeError, RuntimeOptions, StateBackend, StateError, WasmChain,
};

/// Loaded plugins by fingerprint (module, config and limits): what a reload may reuse.
pub(super) type PluginsByFingerprint = HashMap<PluginFingerprint, Arc<LoadedPlugin>>;

/// The access log `[access_log]` asks for, started (`None` when it is off).
pub(super) fn start_access_log(
    config: &Config,
) -> Result<Option<Arc<crate::access_log::AccessLog>>, GatewayError> {
    crate::access_log::AccessLog::start(&config.access_log)
        .map_err(|e| GatewayError::AccessLog(e.to_string()))
}

/// The plugin runtime, with the state backend of `[state]` and `fetcher` for plugins' fetches.
pub(super) fn new_runtime(
    config: &Config,
    fetcher: Arc<dyn Fetcher>,
) -> Result<Runtime, GatewayError> {
    let opts = RuntimeOptions {
        cache_dir: Some(config.gateway.cache_dir.clone()),
        limits: config.limits.plugins.clone(),
        ..RuntimeOptions::default()
    };
    let state = new_state(&config.state, &config.limits.plugins)?;
    Runtime::with_fetcher(opts, state, fetcher).map_err(|e| GatewayError::Runtime(e.to_string()))
}

/// The state backend for `[state]`. Redis (one node or a cluster) connects lazily, so the gateway
/// starts while Redis is down (each plugin's `on_state_error` decides meanwhile); a background
/// ping logs whether it answers.
fn new_state(
    settings: &StateSettings,
    limits: &config::PluginLimits,
) -> Result<Arc<dyn StateBackend>, GatewayError> {
    match settings {
        StateSettings::Memory => Ok(Arc::new(MemoryState::with_limits(
            limits.state_max_entries,
            limits.state_max_bytes,
        ))),
        StateSettings::Redis {
            url,
            timeout,
            key_prefix,
        } => redis_state(RedisState::new(RedisOptions {
            url: url.clone(),
            timeout: *timeout,
            key_prefix: key_prefix.clone(),
        })),
        StateSettings::RedisCluster {
            nodes,
            timeout,
            key_prefix,
        } => redis_state(RedisState::cluster(RedisClusterOptions {
            nodes: nodes.clone(),
            timeout: *timeout,
            key_prefix: key_prefix.clone(),
        })),
    }
}

/// A Redis backend, with a background ping that logs whether it answers.
fn redis_state(
    state: Result<RedisState, StateError>,
) -> Result<Arc<dyn StateBackend>, GatewayError> {
    let state = Arc::new(state.map_err(|e| GatewayError::State(e.to_string()))?);
    let probe = Arc::clone(&state);
    tokio::spawn(async move {
        let backend = probe.backend_name();
        match probe.ping().await {
            Ok(()) => tracing::info!(backend, "state backend: redis answers"),
            Err(e) => {
                tracing::warn!(backend, error = %e, "state backend: redis does not answer yet")
            }
        }
    });
    Ok(state)
}

/// Load every plugin (reusing unchanged ones from `previous`), then build one chain per route.
/// Returns the routing table, the plugins by fingerprint and how many were loaded anew.
pub(super) async fn build(
    runtime: &Runtime,
    config: &Config,
    previous: &PluginsByFingerprint,
) -> Result<(RoutingTable, PluginsByFingerprint, usize), GatewayError> {
    let plugins = load_plugins(runtime, config, previous).await?;
    let table = routing_table(config, &plugins.by_name)?;
    Ok((table, plugins.by_fingerprint, plugins.loaded))
}

/// Every plugin of a config, loaded or reused.
struct Plugins {
    by_fingerprint: PluginsByFingerprint,
    by_name: HashMap<String, Arc<LoadedPlugin>>,
    /// How many were loaded anew (not reused).
    loaded: usize,
}

/// Load every plugin of `config`, reusing the one in `previous` with the same fingerprint.
/// Every plugin that fails to load is reported, not just the first.
async fn load_plugins(
    runtime: &Runtime,
    config: &Config,
    previous: &PluginsByFingerprint,
) -> Result<Plugins, GatewayError> {
    let mut plugins = HashMap::new();
    let mut by_name = HashMap::new();
    let mut issues = Vec::new();
    let mut loaded = 0;
    for (name, spec) in &config.plugins {
        let fingerprint = match runtime.fingerprint(spec).await {
            Ok(f) => f,
            Err(e) => {
                issues.push(plugin_issue(name, &e.to_string()));
                continue;
            }
        };
        let plugin = match previous.get(&fingerprint) {
            Some(p) => p.clone(),
            None => match runtime.load_plugin(spec).await {
                Ok(p) => {
                    loaded += 1;
                    p
                }
                // The plugin refused its own config: point into `[plugins.NAME.config]`.
                Err(RuntimeError::Init { message, .. }) => {
                    issues.extend(config::plugin_config_issues(name, &message));
                    continue;
                }
                Err(e) => {
                    issues.push(plugin_issue(name, &e.to_string()));
                    continue;
                }
            },
        };
        by_name.insert(name.clone(), plugin.clone());
        plugins.insert(fingerprint, plugin);
    }
    if !issues.is_empty() {
        return Err(GatewayError::Plugins(issues));
    }
    Ok(Plugins {
        by_fingerprint: plugins,
        by_name,
        loaded,
    })
}

/// One chain per route, of its plugins in chain order.
fn routing_table(
    config: &Config,
    by_name: &HashMap<String, Arc<LoadedPlugin>>,
) -> Result<RoutingTable, GatewayError> {
    let mut chains: HashMap<String, Arc<dyn Chain>> = HashMap::new();
    for route in &config.routes {
        let members = route
            .chain
            .iter()
            .filter_map(|name| by_name.get(name).cloned())
            .collect();
        chains.insert(route.name.to_string(), Arc::new(WasmChain::new(members)));
    }
    RoutingTable::new(config, chains).map_err(|e| GatewayError::Routing(e.to_string()))
}

/// A plugin's failure, at `plugins.NAME`.
fn plugin_issue(name: &str, message: &str) -> ConfigIssue {
    ConfigIssue {
        path: format!("plugins.{name}"),
        message: message.to_owned(),
    }
}
