//! Thread-per-core serving: `[server] workers` threads, each a current-thread tokio runtime with
//! its own `SO_REUSEPORT` socket on every listener and its own upstream connection pools, so a
//! request is accepted, run through its chain, forwarded and answered on one thread, with no
//! cross-thread wake-up on the way. The kernel spreads new connections over the workers' sockets.
//!
//! What is shared stays shared: the routing table (one `ArcSwap`, so hot swap reaches every
//! worker at once), each listener's connection cap (one semaphore across its workers), health
//! checks, the admin API, the file watcher and the access-log writer (on the control runtime
//! that started the workers).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{oneshot, watch};

use super::gateway::Proxy;
use super::server::{ServeOptions, serve_with};
use super::upstream::Clients;

/// Pending connections per socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// The number of workers when `[server] workers` is not set: the CPUs this process may run on
/// (`taskset` and cgroup CPU limits count).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `count` listening sockets on `addr`, all bound with `SO_REUSEPORT` to the same port (with
/// port 0, the port the first one got).
pub fn bind_reuseport(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let first = bind_one(addr)?;
    let local = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count.max(1) {
        sockets.push(bind_one(local)?);
    }
    Ok(sockets)
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Bind `addr` for the workers (`options.server.workers` of them, default [`default_workers`]):
/// the bound address (useful with port 0) and the listener, with one connection cap across its
/// workers.
pub fn bind(
    addr: SocketAddr,
    mut options: ServeOptions,
) -> io::Result<(SocketAddr, WorkerListener)> {
    let workers = options.server.workers.unwrap_or_else(default_workers);
    let sockets = bind_reuseport(addr, workers)?;
    let local = match sockets.first() {
        Some(socket) => socket.local_addr()?,
        None => addr,
    };
    let cap = options.server.max_connections;
    options.slots = Some(Arc::new(tokio::sync::Semaphore::new(cap)));
    Ok((local, WorkerListener { options, sockets }))
}

/// One listener as the workers serve it: its options and one socket per worker.
pub struct WorkerListener {
    /// Name, TLS mode and `[server]` settings (with the listener's shared connection cap).
    pub options: ServeOptions,
    /// One socket per worker, from [`bind_reuseport`].
    pub sockets: Vec<std::net::TcpListener>,
}

/// Start `count` workers serving `listeners` until `shutdown` turns true (or its sender is
/// dropped). Each returned receiver resolves when its worker stopped serving (connections
/// drained or dropped at the drain deadline); the worker then waits for the log phase, bounded
/// by the same deadline, before its runtime goes.
pub fn spawn(
    count: usize,
    listeners: Vec<WorkerListener>,
    proxy: &Arc<Proxy>,
    shutdown: &watch::Receiver<bool>,
) -> io::Result<Vec<oneshot::Receiver<()>>> {
    let mut per_worker: Vec<Vec<(ServeOptions, std::net::TcpListener)>> =
        (0..count).map(|_| Vec::new()).collect();
    let mut drain = Duration::ZERO;
    for listener in listeners {
        drain = drain.max(listener.options.server.drain_timeout);
        for (worker, socket) in per_worker.iter_mut().zip(listener.sockets) {
            worker.push((listener.options.clone(), socket));
        }
    }
    let mut done = Vec::with_capacity(count);
    for (index, sockets) in per_worker.into_iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        let proxy = proxy.clone();
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name(format!("tollgate-worker-{index}"))
            .spawn(move || run_worker(sockets, proxy, shutdown, drain, tx))?;
        done.push(rx);
    }
    Ok(done)
}

fn run_worker(
    sockets: Vec<(ServeOptions, std::net::TcpListener)>,
    proxy: Arc<Proxy>,
    shutdown: watch::Receiver<bool>,
    drain: Duration,
    done: oneshot::Sender<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start a worker runtime");
            return;
        }
    };
    // Upstream connections made on this thread are driven by this runtime, and only this
    // thread's requests use them.
    Clients::install_for_worker();
    runtime.block_on(async move {
        let serving = sockets.into_iter().filter_map(|(options, socket)| {
            let listener = match tokio::net::TcpListener::from_std(socket) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::error!(%error, listener = %options.listener, "cannot serve a socket");
                    return None;
                }
            };
            let mut stop = shutdown.clone();
            let stopped = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            Some(serve_with(listener, proxy.clone(), stopped, options))
        });
        futures_util::future::join_all(serving).await;
        let _ = done.send(());
        // Log-phase tasks run on this runtime: keep it until they end or the deadline passes.
        let _ = tokio::time::timeout(drain, super::drain::log_phase_drained()).await;
    });
}
