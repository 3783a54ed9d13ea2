//! The admin listener: the same connection rules as the client-facing listeners (`[server]`
//! connection cap with a fast 503 past it, idle and header-read timeouts through the proxy's
//! connection clocks), then per request the token, the Host check and the cross-site check
//! ([`super::guard`]) before any endpoint runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::{AdminToken, ServerSettings};
use crate::gateway::Gateway;
use crate::proxy::connection::{Answered, Tracker, WatchedIo, drive};

/// Serve the admin API until `shutdown` completes, then let requests in flight (a reload, say)
/// finish; the caller bounds that wait with the drain deadline. With a `token`, every request
/// must carry it; the token is the one read at start (a reload that changes it warns).
/// `settings` are the `[server]` settings read at start: the connection cap and clocks.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    token: Option<AdminToken>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let token = token.map(Arc::new);
    let admin_addr = listener.local_addr().ok();
    tokio::pin!(shutdown);
    let builder = builder(&settings);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let refusing = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        // Past the cap: answer 503 now and close, never queue.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("tollgate_connections_refused_total", "listener" => "admin")
                .increment(1);
            crate::proxy::server::refuse(stream, settings.max_connections, &refusing);
            continue;
        };
        let tracker = Tracker::new(settings.idle_timeout, settings.header_read_timeout);
        let requests = tracker.clone();
        let (gateway, token) = (gateway.clone(), token.clone());
        let service = service_fn(move |req: Request<Incoming>| {
            let in_flight = requests.request_started();
            let (gateway, token) = (gateway.clone(), token.clone());
            async move {
                let refused = match token.as_deref() {
                    Some(t) => super::refuse_unauthorized(t, &req),
                    // Without a token the Host decides: only the admin address or a loopback
                    // name, so a rebound DNS name cannot reach it from a browser.
                    None => super::guard::refuse_foreign_host(&req, admin_addr),
                }
                .or_else(|| super::guard::refuse_cross_site(&req));
                let response = match refused {
                    Some(refused) => refused,
                    None => super::handle(gateway, req).await,
                };
                Ok::<_, Infallible>(response.map(|body| Answered::new(body, in_flight)))
            }
        });
        let io = TokioIo::new(WatchedIo::new(stream, tracker.clone()));
        let stopped = stopped.clone();
        let connection = builder.serve_connection(io, service).into_owned();
        // Boxed where the types are concrete (see `proxy::server::serve_connection`).
        let driven: Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(drive(connection, tracker, stopped));
        connections.spawn(async move {
            let _permit = permit;
            driven.await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// hyper's own header timer backs up the connection clocks, as on the proxy listeners.
fn builder(settings: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.idle_timeout + settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2.max_concurrent_streams);
    builder
}
