//! The client-facing server: accepts TCP connections, speaks HTTP/1.1 and h2c, and shuts down
//! gracefully.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::gateway::Proxy;
use crate::config::Limits;
use crate::tls::ListenerMode;

/// Connection-level settings of [`serve_with`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// After shutdown is signalled, how long in-flight requests may take before connections are
    /// dropped.
    pub drain_timeout: Duration,
    /// How long a client may take to send a request head (slowloris).
    pub header_read_timeout: Duration,
    /// TLS termination and the plain-HTTP policy of this listener (docs/tls.md).
    pub mode: ListenerMode,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            mode: ListenerMode::default(),
        }
    }
}

/// Serve `listener` until `shutdown` resolves, then stop accepting and let in-flight requests
/// finish (bounded by the default drain timeout).
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, shutdown: impl Future<Output = ()>) {
    serve_with(listener, proxy, shutdown, ServeOptions::default()).await;
}

/// [`serve`] with explicit options.
pub async fn serve_with(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) {
    // Hyper's own parser limits come from the table at start; they sit above the table's limits
    // so normal overflows get the gateway's JSON 431, and hyper only stops the grossly oversized.
    let builder = Arc::new(builder(proxy.table().limits(), &options));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "could not set TCP_NODELAY");
                }
                let client_ip = peer.ip().to_canonical();
                let proxy = proxy.clone();
                let (builder, mode, watcher) = (builder.clone(), options.mode.clone(), graceful.watcher());
                tokio::spawn(async move {
                    // The TLS handshake runs here, off the accept loop, bounded by its timeout.
                    let Some((stream, info)) = mode.accept(stream).await else { return };
                    let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                        let proxy = proxy.clone();
                        req.extensions_mut().insert(info.clone());
                        async move { Ok::<_, Infallible>(proxy.handle(client_ip, req).await) }
                    });
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    if let Err(error) = watcher.watch(connection).await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.drain_timeout) => {
            tracing::warn!(timeout = ?options.drain_timeout, "drain timed out; dropping connections");
        }
    }
}

fn builder(limits: &Limits, options: &ServeOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_headers(limits.max_header_count.saturating_add(16))
        // Hyper requires at least 8 KiB; the request line shares the buffer with the headers.
        .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(16 * 1024));
    // h2 counts 32 bytes of overhead per header field.
    let h2_list = limits
        .max_header_bytes
        .saturating_add(limits.max_header_count.saturating_mul(32))
        .saturating_mul(2);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Ping idle h2 connections so dead peers do not hold streams and memory forever.
        .keep_alive_interval(Duration::from_secs(20))
        .max_header_list_size(u32::try_from(h2_list).unwrap_or(u32::MAX));
    builder
}
