//! Pooled keep-alive HTTP clients for upstream calls, one per client setting (connect timeout,
//! TLS), owned by the proxy so connections outlive routing table swaps; and [`send`], one
//! attempt bounded by the upstream's request timeout. Proxied requests to plain-HTTP upstreams
//! go through the worker's own HTTP/1.1 pools ([`super::h1_pool`]); the rest through hyper-util.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::connector::Connector;
use super::h1_pool::{H1Pool, SendError};
use super::pool::{ClientKey, UpstreamPool};
use crate::config::UpstreamTls;
use crate::proxy::body::ProxyBody;
use crate::proxy::error::ProxyError;

/// The HTTP client used for upstream calls (TLS for `https://` upstreams: `connector.rs`).
pub type HttpClient = Client<Connector, ProxyBody>;

/// Pooled clients, one per connect timeout and TLS setting (the per-upstream client settings).
/// Owned by [`crate::proxy::Proxy`], not by a routing table, so keep-alive connections survive table
/// swaps; a reload that changes an upstream's TLS files gets a new client (new connections).
#[derive(Debug, Default)]
pub struct Clients {
    by_settings: RwLock<HashMap<ClientKey, HttpClient>>,
    /// HTTP/1.1 pools for proxied requests to plain-HTTP upstreams, by connect timeout.
    plain: RwLock<HashMap<Duration, Arc<H1Pool>>>,
}

/// How a proxied request reaches an upstream's targets.
#[derive(Debug, Clone)]
pub enum ProxyClient {
    /// Plain HTTP/1.1 through the worker's own pool.
    Plain(Arc<H1Pool>),
    /// TLS (and HTTP/2 by ALPN) through hyper-util's client.
    General(Box<HttpClient>),
}

impl Clients {
    /// The client for this upstream's settings, created on first use.
    pub fn get(&self, pool: &UpstreamPool) -> HttpClient {
        let spec = pool.spec();
        shared(&self.by_settings, &pool.client_key, || {
            new_client(spec.connect_timeout, spec.tls.as_ref())
        })
    }

    /// The client for proxied requests to this upstream.
    pub fn for_proxy(&self, pool: &UpstreamPool) -> ProxyClient {
        if pool.spec().tls.is_some() {
            return ProxyClient::General(Box::new(self.get(pool)));
        }
        let timeout = pool.spec().connect_timeout;
        ProxyClient::Plain(shared(&self.plain, &timeout, || {
            Arc::new(H1Pool::new(timeout))
        }))
    }
}

/// The value for `key` in `map`, made by `make` on first use (a read lock on the common path).
fn shared<K: Hash + Eq + Clone, V: Clone>(
    map: &RwLock<HashMap<K, V>>,
    key: &K,
    make: impl FnOnce() -> V,
) -> V {
    if let Ok(map) = map.read()
        && let Some(value) = map.get(key)
    {
        return value.clone();
    }
    let mut map = match map.write() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(key.clone()).or_insert_with(make).clone()
}

thread_local! {
    /// The pools of the worker running on this thread (see `proxy::workers`).
    static WORKER: OnceCell<Arc<Clients>> = const { OnceCell::new() };
}

impl Clients {
    /// Give the current thread (a worker with its own runtime) pools of its own: connections
    /// it opens are driven by its runtime and used only by its requests.
    pub fn install_for_worker() {
        WORKER.with(|cell| {
            let _ = cell.set(Arc::default());
        });
    }

    /// The current worker's pools, if this thread is a worker.
    pub fn for_worker() -> Option<Arc<Clients>> {
        WORKER.with(|cell| cell.get().cloned())
    }
}

fn new_client(connect_timeout: Duration, tls: Option<&UpstreamTls>) -> HttpClient {
    let connector = Connector::new(connect_timeout, tls);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// Send `req` to `target` of `pool`, waiting at most the request timeout for the response head.
pub async fn send(
    client: &ProxyClient,
    pool: &UpstreamPool,
    target: &str,
    req: Request<ProxyBody>,
) -> Result<Response<Incoming>, ProxyError> {
    let timeout = pool.request_timeout();
    let sent = match client {
        ProxyClient::Plain(plain) => tokio::time::timeout(timeout, plain.send(target, req)).await,
        ProxyClient::General(client) => {
            // Boxed: this client's request future is large, and every request's future would
            // carry it.
            let request = Box::pin(async move {
                client.request(req).await.map_err(|e| match e.is_connect() {
                    true => SendError::Connect(Box::new(e)),
                    false => SendError::Exchange(Box::new(e)),
                })
            });
            tokio::time::timeout(timeout, request).await
        }
    };
    // `None`: no response head within the request timeout.
    let failure = match sent {
        Ok(Ok(response)) => return Ok(response),
        Ok(Err(e)) => Some(e),
        Err(_elapsed) => None,
    };
    let (upstream, target) = (pool.name().to_owned(), target.to_owned());
    Err(match failure {
        None => ProxyError::UpstreamTimeout {
            upstream,
            target,
            timeout,
        },
        Some(SendError::Connect(source)) => ProxyError::UpstreamConnect {
            upstream,
            target,
            source,
        },
        Some(SendError::Exchange(source)) => ProxyError::Upstream {
            upstream,
            target,
            source,
        },
    })
}
