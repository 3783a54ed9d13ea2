//! The live gateway: its runtime, its proxy and the config and plugins it serves, and the reload
//! that builds a new set beside them and swaps it in atomically, or changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Mutex;

use super::assemble::{PluginsByFingerprint, build, new_runtime, start_access_log};
use super::error::GatewayError;
use super::provenance::{Provenance, Revision};
use super::reload::{Inputs, ReloadReport, named_files, read_config, restart_warnings};
use super::rollout::{self, CanaryAction, CanaryActionError, CanaryRegistry};
use crate::config::{self, Config};
use crate::proxy::{Proxy, RoutingTable};
use crate::runtime::{CanaryState, CanaryStatus, LoadedPlugin, Runtime, StateBackend};
use crate::tls::{self, ListenerMode, TlsListener};

/// The plugins and config currently served.
struct Active {
    config: Arc<Config>,
    plugins: PluginsByFingerprint,
    /// What the config and the files it names held when they were loaded.
    inputs: Inputs,
    /// Local generation: 1 at start, +1 per applied reload.
    generation: i64,
    /// Each entry's canary state, by entry name.
    canaries: HashMap<String, Arc<CanaryState>>,
}

/// What a reload built, ready to be swapped in: nothing of it serves yet.
struct Staged {
    config: Config,
    inputs: Inputs,
    table: RoutingTable,
    plugins: PluginsByFingerprint,
    canaries: HashMap<String, Arc<CanaryState>>,
    /// Plugins loaded anew (the others are reused).
    loaded: usize,
    /// New certificates for the running TLS listeners.
    tls: Vec<(Arc<TlsListener>, tls::listener::Prepared)>,
    /// The new access log, when `[access_log]` changed (`Some(None)`: now off).
    access_log: Option<Option<Arc<crate::access_log::AccessLog>>>,
}

/// A gateway's moving parts: runtime, proxy and the active config.
pub struct Gateway {
    config_path: PathBuf,
    runtime: Runtime,
    proxy: Arc<Proxy>,
    active: Mutex<Active>,
    /// TLS listeners by listener name, whose certificates a reload replaces (docs/tls.md).
    tls_listeners: std::sync::Mutex<HashMap<String, Arc<TlsListener>>>,
    /// True from the moment every listener serves until shutdown starts (`/admin/ready`).
    pub(super) ready: AtomicBool,
    /// OTLP metrics export (`[telemetry] metrics_endpoint`), stopped when the gateway is dropped.
    _metrics_export: Option<crate::telemetry::MetricsExporter>,
    /// Canary states across reloads.
    registry: CanaryRegistry,
}

impl Gateway {
    /// Load the config and every plugin it names, and build the first routing table.
    pub async fn load(config_path: &Path) -> Result<Arc<Self>, GatewayError> {
        Self::load_at(config_path, None).await
    }

    /// Like [`Gateway::load`], recording `control_revision` (the control plane's revision of this
    /// config, when following one) as the revision that introduced every module.
    pub async fn load_at(
        config_path: &Path,
        control_revision: Option<i64>,
    ) -> Result<Arc<Self>, GatewayError> {
        let (text, config) = read_config(config_path)?;
        let inputs = Inputs::read(&text, &named_files(&config)).await;
        // The proxy exists first (serving nothing) so that plugins can fetch through it; its
        // first table is swapped in before any listener is bound.
        let proxy = Arc::new(Proxy::new(RoutingTable::empty()));
        let runtime = new_runtime(&config, proxy.fetcher())?;
        let revision = control_revision.map_or(Revision::local(1), Revision::control);
        let registry = CanaryRegistry::default();
        let built = build(&runtime, &config, &HashMap::new(), revision, &registry).await?;
        proxy.swap(built.table);
        proxy.set_access_log(start_access_log(&config)?);
        let telemetry = config.telemetry.as_ref();
        if let Some(settings) = telemetry.filter(|s| !s.endpoint.is_empty()) {
            let tracer = crate::telemetry::Tracer::start(settings);
            proxy.set_tracer(tracer.map_err(GatewayError::Telemetry)?);
        }
        let metrics_export = telemetry.and_then(crate::telemetry::MetricsExporter::start);
        Ok(Arc::new(Self {
            config_path: config_path.to_owned(),
            runtime,
            proxy,
            active: Mutex::new(Active {
                config: Arc::new(config),
                plugins: built.plugins,
                inputs,
                generation: 1,
                canaries: built.canaries,
            }),
            tls_listeners: std::sync::Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            _metrics_export: metrics_export,
            registry,
        }))
    }

    /// Serving traffic: plugins loaded, the routing table in place, listeners bound, and no
    /// shutdown started.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The plugins currently loaded, by name (each with its statistics since it was loaded).
    pub async fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut plugins: Vec<_> = self.plugins_with_provenance().await;
        plugins.sort_by(|a, b| a.0.name().cmp(b.0.name()));
        plugins.into_iter().map(|(p, _)| p).collect()
    }

    /// The plugins currently loaded, each with where its module came from, sorted by name.
    pub async fn plugins_with_provenance(&self) -> Vec<(Arc<LoadedPlugin>, Provenance)> {
        let active = self.active.lock().await;
        let mut plugins: Vec<_> = active
            .plugins
            .values()
            .map(|l| (l.plugin.clone(), l.provenance.clone()))
            .collect();
        plugins.sort_by(|a, b| a.0.name().cmp(b.0.name()));
        plugins
    }

    /// Each entry's canary state, by entry name (entries with a canary only).
    pub async fn canaries(&self) -> HashMap<String, Arc<CanaryState>> {
        self.active.lock().await.canaries.clone()
    }

    /// Promote or roll back entry `name`'s canary (`POST /admin/plugins/NAME/promote|rollback`).
    /// The state outlives reloads of the same canary.
    pub async fn canary_action(
        &self,
        name: &str,
        action: CanaryAction,
    ) -> Result<CanaryStatus, CanaryActionError> {
        let state = self
            .active
            .lock()
            .await
            .canaries
            .get(name)
            .cloned()
            .ok_or_else(|| CanaryActionError::NoCanary(name.to_owned()))?;
        rollout::apply(name, &state, action)
    }

    /// The proxy serving traffic.
    pub fn proxy(&self) -> Arc<Proxy> {
        self.proxy.clone()
    }

    /// The state backend shared by every plugin (the admin API reads usage counters from it).
    pub fn state(&self) -> Arc<dyn StateBackend> {
        Arc::clone(self.runtime.state())
    }

    /// The config currently served.
    pub async fn config(&self) -> Arc<Config> {
        self.active.lock().await.config.clone()
    }

    /// Re-read the config file, load what changed and swap the routing table atomically.
    /// In-flight requests finish on the old chains. On error nothing changes. When nothing the
    /// reload reads changed (config bytes, modules, TLS files), nothing is done: the report says
    /// `unchanged` and `tollgate_reloads_skipped_total` counts it.
    pub async fn reload(&self) -> Result<ReloadReport, GatewayError> {
        self.reload_at(None).await
    }

    /// Like [`Gateway::reload`], for the control plane's revision `control_revision` (recorded as
    /// the revision that introduced the modules it loads; else the next local generation).
    pub async fn reload_at(
        &self,
        control_revision: Option<i64>,
    ) -> Result<ReloadReport, GatewayError> {
        let started = Instant::now();
        let mut active = self.active.lock().await;
        let revision =
            control_revision.map_or(Revision::local(active.generation + 1), Revision::control);
        let staged = match self.stage(&active, revision).await {
            Ok(Some(staged)) => staged,
            Ok(None) => {
                metrics::counter!("tollgate_reloads_skipped_total").increment(1);
                tracing::info!("reload skipped: config and modules unchanged");
                return Ok(ReloadReport {
                    unchanged: true,
                    loaded: 0,
                    reused: active.plugins.len(),
                    routes: active.config.routes.len(),
                    millis: started.elapsed().as_secs_f64() * 1000.0,
                    warnings: Vec::new(),
                });
            }
            Err(e) => {
                metrics::counter!("tollgate_reloads_total", "result" => "error").increment(1);
                tracing::error!(error = %e, "reload rejected; still serving the previous config");
                return Err(e);
            }
        };
        // Counted before the swap, which cannot fail: whoever sees the new config served also
        // sees the reload counted (tests and operators compare the two).
        metrics::counter!("tollgate_reloads_total", "result" => "ok").increment(1);
        let report = self.swap_in(staged, &mut active, started);
        tracing::info!(
            loaded = report.loaded,
            reused = report.reused,
            routes = report.routes,
            millis = report.millis,
            "reloaded"
        );
        Ok(report)
    }

    /// Read the config and build what it needs, changing nothing; `None` when nothing the reload
    /// reads changed.
    async fn stage(
        &self,
        active: &Active,
        revision: Revision,
    ) -> Result<Option<Staged>, GatewayError> {
        let (text, config) = read_config(&self.config_path)?;
        let inputs = Inputs::read(&text, &named_files(&config)).await;
        if inputs == active.inputs {
            return Ok(None);
        }
        let built = build(
            &self.runtime,
            &config,
            &active.plugins,
            revision,
            &self.registry,
        )
        .await?;
        let tls = self.prepare_tls(&config)?;
        // A changed `[access_log]` opens its new destination before anything is swapped.
        let same = self.proxy.access_log().map(|l| l.settings().clone())
            == config.access_log.enabled.then(|| config.access_log.clone());
        let access_log = if same {
            None
        } else {
            Some(start_access_log(&config)?)
        };
        Ok(Some(Staged {
            config,
            inputs,
            table: built.table,
            plugins: built.plugins,
            canaries: built.canaries,
            loaded: built.loaded,
            tls,
            access_log,
        }))
    }

    /// Swap in what `stage` built: routing table, certificates and access log, then make its
    /// config the active one.
    fn swap_in(&self, staged: Staged, active: &mut Active, started: Instant) -> ReloadReport {
        let Staged {
            config,
            inputs,
            table,
            plugins,
            canaries,
            loaded,
            tls,
            access_log,
        } = staged;
        let warnings = restart_warnings(&active.config, &config);
        for w in &warnings {
            tracing::warn!("{w}");
        }
        self.proxy.swap(table);
        // New handshakes use the new certificates; open connections keep their session.
        for (listener, prepared) in tls {
            listener.apply(prepared);
        }
        if let Some(access_log) = access_log {
            self.proxy.set_access_log(access_log);
        }
        let report = ReloadReport {
            unchanged: false,
            loaded,
            reused: plugins.len() - loaded,
            routes: config.routes.len(),
            millis: started.elapsed().as_secs_f64() * 1000.0,
            warnings,
        };
        *active = Active {
            config: Arc::new(config),
            plugins,
            inputs,
            generation: active.generation + 1,
            canaries,
        };
        self.registry.retain(&active.canaries);
        report
    }

    /// Files whose change triggers a reload: the config, every plugin module and TLS file.
    pub async fn watched_files(&self) -> Vec<PathBuf> {
        let active = self.active.lock().await;
        let mut files = vec![self.config_path.clone()];
        files.extend(named_files(&active.config));
        files
    }

    /// Build the TLS settings of every running TLS listener from `config`, without applying them.
    fn prepare_tls(
        &self,
        config: &Config,
    ) -> Result<Vec<(Arc<TlsListener>, tls::listener::Prepared)>, GatewayError> {
        let running = match self.tls_listeners.lock() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut out = Vec::new();
        for l in &config.listeners {
            if let (Some(settings), Some(listener)) = (&l.tls, running.get(&l.name)) {
                let prepared = TlsListener::prepare(settings)
                    .map_err(|e| GatewayError::Tls(format!("listener `{}`: {e}", l.name)))?;
                out.push((listener.clone(), prepared));
            }
        }
        Ok(out)
    }

    /// The connection handling of listener `l`: TLS (registered for reloads) or plain HTTP.
    pub(super) fn listener_mode(&self, l: &config::Listener) -> Result<ListenerMode, GatewayError> {
        let tls = match &l.tls {
            Some(settings) => {
                let listener = Arc::new(
                    TlsListener::new(settings)
                        .map_err(|e| GatewayError::Tls(format!("listener `{}`: {e}", l.name)))?,
                );
                let mut map = match self.tls_listeners.lock() {
                    Ok(map) => map,
                    Err(poisoned) => poisoned.into_inner(),
                };
                map.insert(l.name.clone(), listener.clone());
                Some(listener)
            }
            None => None,
        };
        Ok(ListenerMode {
            tls,
            plain_http: l.plain_http,
        })
    }
}
