//! Serving: bind every listener and the admin API and start the workers (`start`), drain and
//! stop (`Running::shutdown`), and `tollgate run`, which reloads on SIGHUP and drains on SIGTERM
//! or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::GatewayError;
use super::live::Gateway;
use crate::config::{Admin, Config, ServerSettings};
use crate::proxy::workers::WorkerListener;

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
        // Counters written behind (`add-many` on Redis) go out before the process ends; at least
        // a second for it, even when the drain used up its deadline.
        let state = self.gateway.state();
        let flush_by = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
        if tokio::time::timeout_at(flush_by, state.flush())
            .await
            .is_err()
        {
            tracing::warn!("state backend: pending counter updates not sent before shutdown");
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
    start_at(config_path, None).await
}

/// Like [`start`], for revision `control_revision` of a control plane (recorded in the
/// modules' provenance).
pub async fn start_at(
    config_path: &Path,
    control_revision: Option<i64>,
) -> Result<Running, GatewayError> {
    // Plugin statistics resolve their metric handles at load: the recorder comes first.
    crate::admin::install_metrics_recorder();
    let gateway = Gateway::load_at(config_path, control_revision).await?;
    let config = gateway.config().await;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (listeners, bound) = bind_listeners(&gateway, &config)?;
    let mut tasks = spawn_workers(&gateway, &config, &listeners, bound, &shutdown_rx)?;
    let (admin_shutdown, admin_rx) = watch::channel(false);
    let (admin, admin_task) = match &config.admin {
        Some(a) => {
            let (local, task) = serve_admin(&gateway, a, &config.server, admin_rx).await?;
            (Some(local), Some(task))
        }
        None => (None, None),
    };
    // The watcher is pointed at the files before the gateway reports ready, so an edit made
    // right after start is never missed.
    if config.gateway.watch
        && let Some(watching) = crate::watch::start(gateway.clone()).await
    {
        tasks.push(tokio::spawn(watching.run(wait_for(shutdown_rx.clone()))));
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

/// Start the workers serving the bound listeners, each worker in a task of its own.
fn spawn_workers(
    gateway: &Gateway,
    config: &Config,
    listeners: &[SocketAddr],
    bound: Vec<WorkerListener>,
    shutdown_rx: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, GatewayError> {
    // Thread-per-core: each worker serves every listener on a socket of its own (docs/performance.md).
    let workers = config
        .server
        .workers
        .unwrap_or_else(crate::proxy::workers::default_workers);
    let first = listeners
        .first()
        .copied()
        .unwrap_or(([127, 0, 0, 1], 0).into());
    let served = crate::proxy::workers::spawn(workers, bound, &gateway.proxy(), shutdown_rx)
        .map_err(|source| GatewayError::Bind {
            addr: first,
            source,
        })?;
    let mut tasks = Vec::new();
    for worker in served {
        tasks.push(tokio::spawn(async move {
            let _ = worker.await;
        }));
    }
    Ok(tasks)
}

/// Bind the admin API and serve it until `stop` says so; its bound address and task.
async fn serve_admin(
    gateway: &Arc<Gateway>,
    a: &Admin,
    server: &ServerSettings,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), GatewayError> {
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
    gateway.proxy().set_admin_addr(local);
    tracing::info!(addr = %local, "admin API listening");
    let task = tokio::spawn(crate::admin::serve(
        listener,
        gateway.clone(),
        a.token.clone(),
        server.clone(),
        wait_for(stop),
    ));
    Ok((local, task))
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

/// Resolves once `rx` reads true (or its sender is gone).
async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// `tollgate run`: serve until SIGTERM or SIGINT, then drain (stop accepting, finish in-flight
/// requests and the log phase within `[server] drain_timeout_ms`) and return; a second signal
/// stops the drain at once. SIGHUP reloads.
pub async fn run(config_path: PathBuf) -> anyhow::Result<()> {
    crate::admin::install_metrics_recorder();
    let running = start(&config_path).await?;
    serve_until_signal(running).await
}

/// Serve a started gateway until SIGTERM or SIGINT, then drain as [`run`] does; SIGHUP reloads.
pub async fn serve_until_signal(running: Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
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
