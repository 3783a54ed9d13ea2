//! Assembles a running gateway from a config: loads plugins through the runtime, builds the
//! routing table for the proxy, and swaps it atomically on reload (file change, SIGHUP or
//! `POST /admin/reload`). A reload that fails changes nothing.

mod reload;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};

use crate::chain::{Chain, Fetcher, NoFetcher};
use crate::config::{self, Config, ConfigError, ConfigIssue, StateSettings};
use crate::proxy::workers::WorkerListener;
use crate::proxy::{Proxy, RoutingTable};
use crate::runtime::{
    LoadedPlugin, MemoryState, PluginFingerprint, RedisOptions, RedisState, Runtime, RuntimeError,
    RuntimeOptions, StateBackend, WasmChain,
};
use crate::tls::{self, ListenerMode, TlsListener};
pub use reload::ReloadReport;
use reload::{Inputs, named_files, read_config, restart_warnings};

/// Why a config could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Some plugins could not be compiled or refused their config.
    #[error("plugins failed to load ({} error(s)):\n{}", .0.len(), config::render_issues(.0))]
    Plugins(Vec<ConfigIssue>),
    /// The routing table could not be built.
    #[error("cannot build the routing table: {0}")]
    Routing(String),
    /// The state backend could not be set up.
    #[error("cannot set up the state backend: {0}")]
    State(String),
    /// The Wasm runtime could not start.
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(String),
    /// TLS settings could not be applied.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The access log destination could not be opened.
    #[error("cannot open the access log: {0}")]
    AccessLog(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl GatewayError {
    /// Every issue as (TOML path, message), for JSON answers.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            GatewayError::Config(ConfigError::Invalid { issues, .. }) => issues.clone(),
            GatewayError::Plugins(issues) => issues.clone(),
            other => vec![ConfigIssue {
                path: String::new(),
                message: other.to_string(),
            }],
        }
    }
}

/// The plugins and config currently served.
struct Active {
    config: Arc<Config>,
    plugins: HashMap<PluginFingerprint, Arc<LoadedPlugin>>,
    /// What the config and the files it names held when they were loaded.
    inputs: Inputs,
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
    ready: AtomicBool,
}

impl Gateway {
    /// Load the config and every plugin it names, and build the first routing table.
    pub async fn load(config_path: &Path) -> Result<Arc<Self>, GatewayError> {
        let (text, config) = read_config(config_path)?;
        let inputs = Inputs::read(&text, &named_files(&config)).await;
        // The proxy exists first (serving nothing) so that plugins can fetch through it; its
        // first table is swapped in before any listener is bound.
        let proxy = Arc::new(Proxy::new(RoutingTable::empty()));
        let runtime = new_runtime(&config, proxy.fetcher())?;
        let (table, plugins, _) = build(&runtime, &config, &HashMap::new()).await?;
        proxy.swap(table);
        proxy.set_access_log(start_access_log(&config)?);
        Ok(Arc::new(Self {
            config_path: config_path.to_owned(),
            runtime,
            proxy,
            active: Mutex::new(Active {
                config: Arc::new(config),
                plugins,
                inputs,
            }),
            tls_listeners: std::sync::Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
        }))
    }

    /// Serving traffic: plugins loaded, the routing table in place, listeners bound, and no
    /// shutdown started.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The plugins currently loaded, by name (each with its statistics since it was loaded).
    pub async fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        let active = self.active.lock().await;
        let mut plugins: Vec<_> = active.plugins.values().cloned().collect();
        plugins.sort_by(|a, b| a.name().cmp(b.name()));
        plugins
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
        let started = Instant::now();
        let mut active = self.active.lock().await;
        let result = async {
            let (text, config) = read_config(&self.config_path)?;
            let inputs = Inputs::read(&text, &named_files(&config)).await;
            if inputs == active.inputs {
                return Ok(None);
            }
            let (table, plugins, loaded) = build(&self.runtime, &config, &active.plugins).await?;
            let tls = self.prepare_tls(&config)?;
            // A changed `[access_log]` opens its new destination before anything is swapped.
            let same = self.proxy.access_log().map(|l| l.settings().clone())
                == config.access_log.enabled.then(|| config.access_log.clone());
            let access_log = if same {
                None
            } else {
                Some(start_access_log(&config)?)
            };
            Ok::<_, GatewayError>(Some((
                config, inputs, table, plugins, loaded, tls, access_log,
            )))
        }
        .await;
        let (config, inputs, table, plugins, loaded, tls, access_log) = match result {
            Ok(Some(parts)) => parts,
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
        };
        metrics::counter!("tollgate_reloads_total", "result" => "ok").increment(1);
        tracing::info!(
            loaded = report.loaded,
            reused = report.reused,
            routes = report.routes,
            millis = report.millis,
            "reloaded"
        );
        Ok(report)
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
    fn listener_mode(&self, l: &config::Listener) -> Result<ListenerMode, GatewayError> {
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

fn start_access_log(
    config: &Config,
) -> Result<Option<Arc<crate::access_log::AccessLog>>, GatewayError> {
    crate::access_log::AccessLog::start(&config.access_log)
        .map_err(|e| GatewayError::AccessLog(e.to_string()))
}

fn new_runtime(config: &Config, fetcher: Arc<dyn Fetcher>) -> Result<Runtime, GatewayError> {
    let opts = RuntimeOptions {
        cache_dir: Some(config.gateway.cache_dir.clone()),
        limits: config.limits.plugins.clone(),
        ..RuntimeOptions::default()
    };
    let state = new_state(&config.state, &config.limits.plugins)?;
    Runtime::with_fetcher(opts, state, fetcher).map_err(|e| GatewayError::Runtime(e.to_string()))
}

/// The state backend for `[state]`. Redis connects lazily, so the gateway starts while Redis is
/// down (each plugin's `on_state_error` decides meanwhile); a background ping logs whether it
/// answers.
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
        } => {
            let state = Arc::new(
                RedisState::new(RedisOptions {
                    url: url.clone(),
                    timeout: *timeout,
                    key_prefix: key_prefix.clone(),
                })
                .map_err(|e| GatewayError::State(e.to_string()))?,
            );
            let probe = Arc::clone(&state);
            tokio::spawn(async move {
                match probe.ping().await {
                    Ok(()) => tracing::info!("state backend: redis answers"),
                    Err(e) => {
                        tracing::warn!(error = %e, "state backend: redis does not answer yet")
                    }
                }
            });
            Ok(state)
        }
    }
}

/// Load every plugin (reusing unchanged ones from `previous`), then build one chain per route.
async fn build(
    runtime: &Runtime,
    config: &Config,
    previous: &HashMap<PluginFingerprint, Arc<LoadedPlugin>>,
) -> Result<
    (
        RoutingTable,
        HashMap<PluginFingerprint, Arc<LoadedPlugin>>,
        usize,
    ),
    GatewayError,
> {
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
    let mut chains: HashMap<String, Arc<dyn Chain>> = HashMap::new();
    for route in &config.routes {
        let members = route
            .chain
            .iter()
            .filter_map(|name| by_name.get(name).cloned())
            .collect();
        chains.insert(route.name.to_string(), Arc::new(WasmChain::new(members)));
    }
    let table =
        RoutingTable::new(config, chains).map_err(|e| GatewayError::Routing(e.to_string()))?;
    Ok((table, plugins, loaded))
}

fn plugin_issue(name: &str, message: &str) -> ConfigIssue {
    ConfigIssue {
        path: format!("plugins.{name}"),
        message: message.to_owned(),
    }
}

/// Validate a config and load every plugin once (compile and `init` with its config), without
/// serving. Returns a one-line summary, then one `warning: ...` line per risky setting.
pub async fn check(path: &Path) -> Result<String, GatewayError> {
    let config = config::load(path)?;
    let runtime = new_runtime(&config, Arc::new(NoFetcher))?;
    build(&runtime, &config, &HashMap::new()).await?;
    let mut out = format!(
        "{} listener(s), {} upstream(s), {} plugin(s), {} route(s)",
        config.listeners.len(),
        config.upstreams.len(),
        config.plugins.len(),
        config.routes.len()
    );
    for warning in check_warnings(&config) {
        out.push_str("\nwarning: ");
        out.push_str(&warning);
    }
    Ok(out)
}

/// Settings that load but weaken the gateway: access-control plugins that let requests through
/// when they fail.
pub fn check_warnings(config: &Config) -> Vec<String> {
    const ACCESS_CONTROL: [&str; 3] = ["auth", "rbac", "ip_filter"];
    config
        .plugins
        .values()
        .filter(|spec| spec.on_error == config::OnError::FailOpen)
        .filter_map(|spec| {
            let stem = spec.module.file_stem()?.to_str()?.replace('-', "_");
            ACCESS_CONTROL.contains(&stem.as_str()).then(|| {
                format!(
                    "plugin `{}` ({stem}) is on_error = \"fail-open\": when it traps or times out, requests pass without its check",
                    spec.name
                )
            })
        })
        .collect()
}

/// A gateway that is serving: its bound addresses and a handle to stop it.
pub struct Running {
    /// The gateway (for reloads).
    pub gateway: Arc<Gateway>,
    /// Bound client-facing addresses, in config order (useful with port 0).
    pub listeners: Vec<SocketAddr>,
    /// Bound admin address, when enabled.
    pub admin: Option<SocketAddr>,
    /// `[server] drain_timeout_ms` as it was at start.
    pub drain_timeout: Duration,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    admin_shutdown: watch::Sender<bool>,
    admin_task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting on every listener (admin included), let in-flight requests and the log
    /// phase finish, and return; whatever is still running at the drain deadline is dropped.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        self.gateway.ready.store(false, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        let aborts: Vec<_> = self.tasks.iter().map(|t| t.abort_handle()).collect();
        let tasks = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout_at(deadline, tasks).await.is_err() {
            tracing::warn!("drain deadline passed; dropping the remaining connections");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
        // Responses are out; their log phase (metering, access logs) may still be running.
        let logs = crate::proxy::drain::log_phase_drained();
        if tokio::time::timeout_at(deadline, logs).await.is_err() {
            tracing::warn!(
                pending = crate::proxy::drain::pending_log_tasks(),
                "drain deadline passed with log-phase calls still running"
            );
        }
        let _ = self.admin_shutdown.send(true);
        if let Some(task) = self.admin_task {
            let _ = task.await;
        }
    }
}

/// Load the config, bind every listener and the admin API, and start serving. File watching is
/// started when the config enables it.
pub async fn start(config_path: &Path) -> Result<Running, GatewayError> {
    // Plugin statistics resolve their metric handles at load: the recorder comes first.
    crate::admin::install_metrics_recorder();
    let gateway = Gateway::load(config_path).await?;
    let config = gateway.config().await;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let (listeners, bound) = bind_listeners(&gateway, &config)?;
    // Thread-per-core: each worker serves every listener on a socket of its own (docs/performance.md).
    let workers = config
        .server
        .workers
        .unwrap_or_else(crate::proxy::workers::default_workers);
    let first = listeners
        .first()
        .copied()
        .unwrap_or(([127, 0, 0, 1], 0).into());
    let served = crate::proxy::workers::spawn(workers, bound, &gateway.proxy(), &shutdown_rx)
        .map_err(|source| GatewayError::Bind {
            addr: first,
            source,
        })?;
    for worker in served {
        tasks.push(tokio::spawn(async move {
            let _ = worker.await;
        }));
    }
    let mut admin = None;
    let (admin_shutdown, admin_rx) = watch::channel(false);
    let mut admin_task = None;
    if let Some(a) = &config.admin {
        let listener = TcpListener::bind(a.addr)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: a.addr,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: a.addr,
            source,
        })?;
        admin = Some(local);
        gateway.proxy().set_admin_addr(local);
        tracing::info!(addr = %local, "admin API listening");
        admin_task = Some(tokio::spawn(crate::admin::serve(
            listener,
            gateway.clone(),
            a.token.clone(),
            config.server.clone(),
            wait_for(admin_rx),
        )));
    }
    if config.gateway.watch {
        tasks.push(tokio::spawn(crate::watch::watch_files(
            gateway.clone(),
            wait_for(shutdown_rx.clone()),
        )));
    }
    gateway.ready.store(true, Ordering::Relaxed);
    Ok(Running {
        gateway,
        listeners,
        admin,
        drain_timeout: config.server.drain_timeout,
        shutdown: shutdown_tx,
        tasks,
        admin_shutdown,
        admin_task,
    })
}

/// Bind every listener with one `SO_REUSEPORT` socket per worker; their bound addresses in
/// config order (useful with port 0).
fn bind_listeners(
    gateway: &Gateway,
    config: &Config,
) -> Result<(Vec<SocketAddr>, Vec<WorkerListener>), GatewayError> {
    let mut addrs = Vec::new();
    let mut bound = Vec::new();
    for l in &config.listeners {
        let options = crate::proxy::ServeOptions {
            mode: gateway.listener_mode(l)?,
            listener: l.name.clone(),
            server: config.server.clone(),
            slots: None,
        };
        let (local, listener) =
            crate::proxy::workers::bind(l.addr, options).map_err(|source| GatewayError::Bind {
                addr: l.addr,
                source,
            })?;
        tracing::info!(listener = %l.name, addr = %local, "listening");
        addrs.push(local);
        bound.push(listener);
    }
    Ok((addrs, bound))
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// `tollgate run`: serve until SIGTERM or SIGINT, then drain (stop accepting, finish in-flight
/// requests and the log phase within `[server] drain_timeout_ms`) and return; a second signal
/// stops the drain at once. SIGHUP reloads.
pub async fn run(config_path: PathBuf) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    crate::admin::install_metrics_recorder();
    let running = start(&config_path).await?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let gateway = running.gateway.clone();
    let signal = loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = gateway.reload().await;
            }
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    let drain_timeout = running.drain_timeout;
    tracing::info!(
        signal,
        drain_timeout_ms = u64::try_from(drain_timeout.as_millis()).unwrap_or(u64::MAX),
        "shutting down: draining in-flight requests"
    );
    let started = std::time::Instant::now();
    tokio::select! {
        () = running.shutdown() => tracing::info!(
            millis = started.elapsed().as_secs_f64() * 1000.0,
            "drained; exiting"
        ),
        _ = term.recv() => tracing::warn!("second signal: exiting without waiting for the drain"),
        _ = int.recv() => tracing::warn!("second signal: exiting without waiting for the drain"),
    }
    Ok(())
}
