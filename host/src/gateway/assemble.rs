//! Builds what a config asks for: the plugin runtime with its state backend, the access log,
//! and the routing table with one chain of loaded plugins per route (reusing unchanged ones).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::error::GatewayError;
use super::provenance::{Provenance, Revision, check_signature};
use super::rollout::CanaryRegistry;
use crate::chain::{Chain, Fetcher};
use crate::config::{self, Config, ConfigIssue, PluginSpec, StateSettings};
use crate::proxy::RoutingTable;
use crate::runtime::{
    Canary, CanaryState, LoadedPlugin, Member, MemoryState, PluginFingerprint, RedisClusterOptions,
    RedisOptions, RedisState, Runtime, RuntimeError, RuntimeOptions, StateBackend, StateError,
    WasmChain, WriteBehind,
};

/// A loaded plugin and where its module came from.
#[derive(Clone)]
pub(super) struct Loaded {
    pub(super) plugin: Arc<LoadedPlugin>,
    pub(super) provenance: Provenance,
}

/// Loaded plugins by fingerprint (module, config and limits): what a reload may reuse.
pub(super) type PluginsByFingerprint = HashMap<PluginFingerprint, Loaded>;

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
            write_behind,
        } => redis_state(
            RedisState::new(RedisOptions {
                url: url.clone(),
                timeout: *timeout,
                key_prefix: key_prefix.clone(),
            }),
            *write_behind,
        ),
        StateSettings::RedisCluster {
            nodes,
            timeout,
            key_prefix,
            write_behind,
        } => redis_state(
            RedisState::cluster(RedisClusterOptions {
                nodes: nodes.clone(),
                timeout: *timeout,
                key_prefix: key_prefix.clone(),
            }),
            *write_behind,
        ),
    }
}

/// A Redis backend, with a background ping that logs whether it answers, its `add-many`
/// updates written behind every `write_behind` (unless zero).
fn redis_state(
    state: Result<RedisState, StateError>,
    write_behind: Duration,
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
    if write_behind.is_zero() {
        return Ok(state);
    }
    Ok(WriteBehind::new(state, write_behind))
}

/// What [`build`] made: nothing of it serves yet.
pub(super) struct Built {
    pub(super) table: RoutingTable,
    pub(super) plugins: PluginsByFingerprint,
    /// How many plugin versions were loaded anew (not reused).
    pub(super) loaded: usize,
    /// The state of each entry's canary, by entry name.
    pub(super) canaries: HashMap<String, Arc<CanaryState>>,
}

/// Load every plugin (reusing unchanged ones from `previous`), then build one chain per route.
/// New loads are recorded as introduced by `revision`; canaries take their state from
/// `registry` (a rolled-back canary stays out while the config names the same one).
pub(super) async fn build(
    runtime: &Runtime,
    config: &Config,
    previous: &PluginsByFingerprint,
    revision: Revision,
    registry: &CanaryRegistry,
) -> Result<Built, GatewayError> {
    let plugins = load_plugins(runtime, config, previous, revision, registry).await?;
    let table = routing_table(config, &plugins.by_name)?;
    Ok(Built {
        table,
        plugins: plugins.by_fingerprint,
        loaded: plugins.loaded,
        canaries: plugins.canaries,
    })
}

/// Every plugin of a config, loaded or reused.
struct Plugins {
    by_fingerprint: PluginsByFingerprint,
    by_name: HashMap<String, Member>,
    canaries: HashMap<String, Arc<CanaryState>>,
    /// How many were loaded anew (not reused).
    loaded: usize,
}

/// Load every plugin of `config` (and its canary), reusing the one in `previous` with the same
/// fingerprint. Every plugin that fails to load is reported, not just the first.
async fn load_plugins(
    runtime: &Runtime,
    config: &Config,
    previous: &PluginsByFingerprint,
    revision: Revision,
    registry: &CanaryRegistry,
) -> Result<Plugins, GatewayError> {
    let mut out = Plugins {
        by_fingerprint: HashMap::new(),
        by_name: HashMap::new(),
        canaries: HashMap::new(),
        loaded: 0,
    };
    let mut issues = Vec::new();
    for (name, spec) in &config.plugins {
        let at = format!("plugins.{name}");
        let stable = match load_one(runtime, config, spec, &at, previous, revision).await {
            Ok((fingerprint, loaded, new)) => {
                out.loaded += usize::from(new);
                out.by_fingerprint.insert(fingerprint, loaded.clone());
                loaded.plugin
            }
            Err(more) => {
                issues.extend(more);
                continue;
            }
        };
        let mut member = Member::from(stable);
        if let (Some(canary), Some(canary_spec)) = (&spec.canary, spec.canary_version()) {
            let at = format!("{at}.canary");
            match load_one(runtime, config, &canary_spec, &at, previous, revision).await {
                Ok((fingerprint, loaded, new)) => {
                    out.loaded += usize::from(new);
                    let state = registry.state(name, fingerprint);
                    out.canaries.insert(name.clone(), state.clone());
                    member.canary = Some(Arc::new(Canary::new(
                        name,
                        loaded.plugin.clone(),
                        canary.basis_points,
                        canary.split.clone(),
                        state,
                        canary.rollback.clone(),
                    )));
                    out.by_fingerprint.insert(fingerprint, loaded);
                }
                Err(more) => issues.extend(more),
            }
        }
        out.by_name.insert(name.clone(), member);
    }
    if !issues.is_empty() {
        return Err(GatewayError::Plugins(issues));
    }
    Ok(out)
}

/// One plugin version (`at` is its TOML path): its signature checked (at every load and reload,
/// reused or not), then reused from `previous` or loaded. True when loaded anew.
async fn load_one(
    runtime: &Runtime,
    config: &Config,
    spec: &PluginSpec,
    at: &str,
    previous: &PluginsByFingerprint,
    revision: Revision,
) -> Result<(PluginFingerprint, Loaded, bool), Vec<ConfigIssue>> {
    let issue = |message: String| vec![plugin_issue(at, &message)];
    let hash = runtime
        .module_hash(spec)
        .await
        .map_err(|e| issue(e.to_string()))?;
    let signer = check_signature(&config.gateway, &spec.module, &hash)
        .map_err(|why| vec![plugin_issue(&format!("{at}.module"), &why)])?;
    let fingerprint = PluginFingerprint::new(spec, &hash);
    if let Some(p) = previous.get(&fingerprint) {
        let mut loaded = p.clone();
        loaded.provenance.signer = signer;
        return Ok((fingerprint, loaded, false));
    }
    let plugin = match runtime.load_plugin_expecting(spec, Some(hash)).await {
        Ok(p) => p,
        // The plugin refused its own config: point into `[plugins.NAME.config]`.
        Err(RuntimeError::Init { message, .. }) => {
            let name = at.strip_prefix("plugins.").unwrap_or(at);
            return Err(config::plugin_config_issues(name, &message));
        }
        Err(e) => return Err(issue(e.to_string())),
    };
    let provenance = Provenance {
        sha256: hex(&hash),
        signer,
        loaded_at_unix_ms: crate::runtime::unix_ms(),
        revision,
    };
    Ok((fingerprint, Loaded { plugin, provenance }, true))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One chain per route, of its plugins in chain order.
fn routing_table(
    config: &Config,
    by_name: &HashMap<String, Member>,
) -> Result<RoutingTable, GatewayError> {
    let mut chains: HashMap<String, Arc<dyn Chain>> = HashMap::new();
    for route in &config.routes {
        let members = route
            .chain
            .iter()
            .filter_map(|name| by_name.get(name).cloned())
            .collect();
        chains.insert(
            route.name.to_string(),
            Arc::new(WasmChain::with_members(members)),
        );
    }
    RoutingTable::new(config, chains).map_err(|e| GatewayError::Routing(e.to_string()))
}

/// A plugin's failure, at `path`.
fn plugin_issue(path: &str, message: &str) -> ConfigIssue {
    ConfigIssue {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}
