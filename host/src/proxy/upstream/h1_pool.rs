//! Keep-alive HTTP/1.1 connections to plain-HTTP targets, one pool per worker and client
//! setting: the proxy's own path to an `http://` upstream.
//!
//! hyper-util's general client does more per request than a proxy in front of known HTTP/1.1
//! targets needs: a pool key built from the URI, a mutex-guarded checkout racing a lazy connect,
//! an extra task per request that waits for the connection to be ready again, and a large
//! future moved on every call. Here a request takes the most recently used connection to its
//! target that is ready (its last response fully read), or opens one, and gives the connection
//! back as soon as the response head arrives; a connection still busy with that response's body
//! is simply not ready for the next request, and hyper closes one whose body was abandoned.
//! Like hyper-util, a request that a reused connection refused before sending a byte (the
//! target closed it meanwhile) goes out again on another connection.
//!
//! TLS upstreams and the gateway's own calls (health checks, plugins' `http-client`) keep
//! hyper-util's client: they need ALPN, HTTP/2 or address pinning, and none is per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::proxy::body::ProxyBody;
use crate::proxy::error::BoxError;

/// A connection unused for this long is closed rather than reused (hyper-util's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per target; past it the oldest are closed.
const MAX_IDLE_PER_TARGET: usize = 256;
/// How many refused-before-sending attempts one request makes before giving up.
const MAX_CANCELED_RETRIES: usize = 3;
/// Every this many returns, every target's list is swept of closed and expired connections
/// (a target dropped by a reload is never checked out again).
const SWEEP_EVERY: u32 = 4096;

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    /// No connection to the target could be opened (refused, unreachable, connect timeout).
    Connect(BoxError),
    /// The exchange failed on an open connection.
    Exchange(BoxError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::Exchange(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(e.as_ref()),
            Self::Exchange(e) => Some(e.as_ref()),
        }
    }
}

/// An idle (or still finishing) connection, newest last.
struct Idle {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

/// The HTTP/1.1 connections of one worker to the plain-HTTP targets of one client setting.
#[derive(Default)]
pub struct H1Pool {
    connect_timeout: Duration,
    idle: Mutex<Idles>,
}

/// The idle lists by target, and the returns since the last sweep.
#[derive(Default)]
struct Idles {
    by_target: HashMap<Box<str>, Vec<Idle>>,
    returns: u32,
}

impl Idles {
    fn sweep(&mut self, now: Instant) {
        for list in self.by_target.values_mut() {
            list.retain(|c| !c.sender.is_closed() && now.duration_since(c.since) < IDLE_TIMEOUT);
        }
        self.by_target.retain(|_, list| !list.is_empty());
    }
}

impl std::fmt::Debug for H1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Pool")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl H1Pool {
    /// A pool whose new connections must be open within `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            idle: Mutex::default(),
        }
    }

    /// Send `req` (its URI `http://target/path?query`) to `target` (`host:port`) and return the
    /// response head; the body streams from the connection, which goes back to the pool now.
    pub async fn send(
        &self,
        target: &str,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let absolute = to_origin_form(&mut req);
        // One clock read per request, for the expiry check and the idle stamp: a connection
        // stamped with its request's start expires a little early after a slow head, never late.
        let now = Instant::now();
        let mut retries = 0;
        loop {
            let (mut sender, reused) = match self.checkout(target, now) {
                Some(sender) => (sender, true),
                // Boxed: connecting is rare, and its future would otherwise make every
                // request's future (moved whole at least once per request) larger.
                None => (Box::pin(self.connect(&absolute)).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(response) => {
                    self.give_back(target, sender, now);
                    return Ok(response);
                }
                Err(mut failed) => match failed.take_message() {
                    // Refused before a byte was written: the target closed a reused
                    // connection meanwhile. Safe to send again, whatever the method.
                    Some(back) if reused && retries < MAX_CANCELED_RETRIES => {
                        retries += 1;
                        req = back;
                    }
                    _ => return Err(SendError::Exchange(Box::new(failed.into_error()))),
                },
            }
        }
    }

    /// The newest connection to `target` that is ready for a request and not expired; closed,
    /// expired and busy ones stay for the sweep or the per-target cap.
    fn checkout(&self, target: &str, now: Instant) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.by_target.get_mut(target)?;
        let ready = list
            .iter()
            .rposition(|c| c.sender.is_ready() && now.duration_since(c.since) < IDLE_TIMEOUT)?;
        Some(list.swap_remove(ready).sender)
    }

    fn give_back(&self, target: &str, sender: SendRequest<ProxyBody>, now: Instant) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.returns += 1;
        if idle.returns >= SWEEP_EVERY {
            idle.returns = 0;
            idle.sweep(now);
        }
        let list = match idle.by_target.get_mut(target) {
            Some(list) => list,
            None => idle.by_target.entry(target.into()).or_default(),
        };
        if list.len() >= MAX_IDLE_PER_TARGET {
            list.remove(0);
        }
        list.push(Idle { sender, since: now });
    }

    /// Open a connection to the authority of `uri` within the connect timeout and drive it on
    /// this worker.
    async fn connect(&self, uri: &Uri) -> Result<SendRequest<ProxyBody>, SendError> {
        let host = uri.host().unwrap_or_default();
        // `[::1]` names an IPv6 address; the resolver wants it bare.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let opened = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)));
        let opened = opened.await;
        let stream = match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(SendError::Connect(Box::new(e))),
            Err(_) => {
                let timeout = self.connect_timeout;
                let e = format!("no connection within {} ms", timeout.as_millis());
                return Err(SendError::Connect(e.into()));
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY upstream");
        }
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// An HTTP/1.1 request line carries the path and query only; the URI's authority goes in
/// `Host` when the request has none, without the default port (as hyper-util's client does).
/// Returns the request's URI as it was.
fn to_origin_form(req: &mut Request<ProxyBody>) -> Uri {
    let uri = req.uri();
    let host = (!req.headers().contains_key(HOST))
        .then(|| {
            let host = uri.host().unwrap_or_default();
            match uri.port_u16() {
                Some(port) if port != 80 => HeaderValue::from_str(&format!("{host}:{port}")),
                _ => HeaderValue::from_str(host),
            }
            .ok()
        })
        .flatten();
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if let Some(host) = host {
        req.headers_mut().insert(HOST, host);
    }
    std::mem::replace(req.uri_mut(), Uri::from(path))
}
