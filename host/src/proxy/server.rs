//! The client-facing server: accepts TCP connections up to `[server] max_connections` (past it,
//! a fast 503 and close), speaks HTTP/1.1 and h2c through hyper, bounds each connection's idle
//! and header time ([`super::connection`]) and each request body's stalls, and shuts down
//! gracefully within the drain deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::body::TimedBody;
use super::connection::{Answered, Tracker, WatchedIo, drive};
use super::error::ProxyError;
use super::gateway::Proxy;
use crate::config::{Limits, ServerSettings};
use crate::tls::{ConnectionInfo, ListenerMode};

/// How long a refused connection may take to receive its 503.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// Refusals in progress at once; past this, refused sockets are closed without an answer so a
/// flood cannot pile up sockets in the refusal path either.
const MAX_REFUSING: usize = 1024;

/// Connection-level settings of [`serve_with`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The listener's name, for metric labels and logs.
    pub listener: String,
    /// Timeouts, the connection cap, HTTP/2 settings and the drain deadline (`[server]`).
    pub server: ServerSettings,
    /// TLS termination and the plain-HTTP policy of this listener (docs/tls.md).
    pub mode: ListenerMode,
    /// The listener's connection slots, when several workers serve it (one cap across them);
    /// `None`: `server.max_connections` slots of its own.
    pub slots: Option<Arc<Semaphore>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            listener: "default".to_owned(),
            server: ServerSettings::default(),
            mode: ListenerMode::default(),
            slots: None,
        }
    }
}

/// Serve `listener` until `shutdown` resolves, then stop accepting and let in-flight requests
/// finish (bounded by the default drain timeout).
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, shutdown: impl Future<Output = ()>) {
    serve_with(listener, proxy, shutdown, ServeOptions::default()).await;
}

/// [`serve`] with explicit options. Returns once every connection has ended, or the drain
/// deadline passed and the rest were dropped. Install the metrics recorder before calling.
pub async fn serve_with(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) {
    let settings = Arc::new(options.server);
    // Hyper's own parser limits come from the table at start; they sit above the table's limits
    // so normal overflows get the gateway's JSON 431, and hyper only stops the grossly oversized.
    let builder = Arc::new(builder(proxy.table().limits(), &settings));
    let name = options.listener;
    let active = metrics::gauge!("tollgate_active_connections", "listener" => name.clone());
    let refused =
        metrics::counter!("tollgate_connections_refused_total", "listener" => name.clone());
    let permits = options
        .slots
        .clone()
        .unwrap_or_else(|| Arc::new(Semaphore::new(settings.max_connections)));
    let refusing = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(%error, listener = %name, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Past the cap: answer now and close, never queue.
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    refused.increment(1);
                    refuse(stream, settings.max_connections, &refusing);
                    continue;
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "could not set TCP_NODELAY");
                }
                let open = Open::new(active.clone(), permit);
                let (proxy, builder, settings) = (proxy.clone(), builder.clone(), settings.clone());
                let (stopped, mode) = (stopped.clone(), options.mode.clone());
                connections.spawn(async move {
                    let _open = open;
                    // The TLS handshake runs here, off the accept loop, bounded by its timeout.
                    let Some((stream, info)) = mode.accept(stream).await else { return };
                    serve_connection(stream, peer, info, proxy, &builder, &settings, stopped).await;
                });
            }
            // Reap finished connection tasks so the set does not grow with every connection.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(settings.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            listener = %name,
            timeout = ?settings.drain_timeout,
            connections = connections.len(),
            "drain deadline passed; dropping connections"
        );
        connections.abort_all();
    }
}

/// Serve one accepted connection (plain TCP or TLS, already handshaken; `info` says which and
/// who the client certificate names) until it ends, a connection clock runs out, or shutdown
/// drains it.
pub(crate) async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    info: ConnectionInfo,
    proxy: Arc<Proxy>,
    builder: &auto::Builder<TokioExecutor>,
    settings: &ServerSettings,
    stopped: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tracker = Tracker::new(settings.idle_timeout, settings.header_read_timeout);
    let client_ip = peer.ip().to_canonical();
    let body_timeout = settings.body_read_timeout;
    let requests = tracker.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let info = info.clone();
        // From here until the response body is done the connection's idle clock stands still.
        let in_flight = requests.request_started();
        // A client that stops sending its body fails the request (408) instead of holding it.
        let req = req.map(|body| TimedBody::new(body, body_timeout));
        let proxy = proxy.clone();
        async move {
            // Boxed: hyper keeps the service's future in a box of its own per connection, which
            // this future's full size (kilobytes) would widen, and moves it there whole on each
            // request. Boxed here, a request's state is one block from the allocator, the one
            // the previous request on this thread freed: hot in cache instead of one cold block
            // per connection.
            let response = Box::pin(proxy.handle(client_ip, info, req)).await;
            Ok::<_, Infallible>(response.map(|body| Answered::new(body, in_flight)))
        }
    });
    let io = TokioIo::new(WatchedIo::new(io, tracker.clone()));
    let connection = builder.serve_connection(io, service).into_owned();
    // Boxed where the types are concrete: rustc cannot prove `Send` for the generic driver's
    // future through hyper's higher-ranked bounds when it sits inside the spawned task.
    let driven: Pin<Box<dyn Future<Output = ()> + Send>> =
        Box::pin(drive(connection, tracker, stopped));
    driven.await;
}

/// An open, counted connection: gives back its slot and gauge when its task ends, however.
struct Open {
    active: metrics::Gauge,
    _permit: OwnedSemaphorePermit,
}

impl Open {
    fn new(active: metrics::Gauge, permit: OwnedSemaphorePermit) -> Self {
        active.increment(1.0);
        Self {
            active,
            _permit: permit,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.active.decrement(1.0);
    }
}

/// Write the 503 `too_many_connections` answer and close, in the background and bounded by
/// [`REFUSAL_TIME`].
pub(crate) fn refuse(mut stream: TcpStream, limit: usize, refusing: &Arc<AtomicUsize>) {
    if refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let refusing = refusing.clone();
    tokio::spawn(async move {
        let answer = ProxyError::TooManyConnections { limit }.to_http1();
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(&answer).await?;
            stream.shutdown().await?;
            // Read what the client sent until it closes: closing with its request unread would
            // make the kernel send a reset, which can destroy the 503 before the client reads it.
            let mut scratch = [0u8; 4096];
            while stream.read(&mut scratch).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
        refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

fn builder(limits: &Limits, settings: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The gateway's own clocks (idle, then header from the first byte; `connection::drive`)
        // bound both. Hyper's single idle+head timer would allocate and arm a timer for every
        // request head on a keep-alive connection, so it is off.
        .header_read_timeout(None)
        .max_headers(limits.max_header_count.saturating_add(16))
        // Hyper requires at least 8 KiB; the request line shares the buffer with the headers.
        .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(16 * 1024));
    // h2 counts 32 bytes of overhead per header field.
    let h2_list = limits
        .max_header_bytes
        .saturating_add(limits.max_header_count.saturating_mul(32))
        .saturating_mul(2);
    let h2 = &settings.http2;
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(h2_list).unwrap_or(u32::MAX))
        .max_concurrent_streams(h2.max_concurrent_streams)
        .initial_stream_window_size(h2.initial_stream_window_bytes)
        .initial_connection_window_size(h2.initial_connection_window_bytes)
        .max_frame_size(h2.max_frame_bytes)
        // Ping idle h2 connections so dead peers do not hold streams and memory forever.
        .keep_alive_interval(h2.keep_alive_interval)
        .keep_alive_timeout(h2.keep_alive_timeout)
        // Rapid reset (CVE-2023-44487) and error-reset floods end in GOAWAY.
        .max_pending_accept_reset_streams(h2.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(h2.max_local_error_reset_streams);
    builder
}
