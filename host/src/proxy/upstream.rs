//! Upstreams: round-robin over targets, and pooled keep-alive HTTP clients that outlive routing
//! table swaps.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::ProxyBody;
use super::connector::Connector;
use super::error::ProxyError;
use crate::config::{Upstream, UpstreamTls};

/// The HTTP client used for upstream calls (TLS for `https://` upstreams: `connector.rs`).
pub type HttpClient = Client<Connector, ProxyBody>;

/// An upstream's targets and timeouts, balanced round-robin.
#[derive(Debug)]
pub struct UpstreamPool {
    name: String,
    targets: Vec<String>,
    next: AtomicUsize,
    connect_timeout: Duration,
    request_timeout: Duration,
    tls: Option<UpstreamTls>,
}

impl UpstreamPool {
    /// Build from the config; `targets` must not be empty (checked by the routing table).
    pub fn new(upstream: &Upstream) -> Self {
        Self {
            name: upstream.name.clone(),
            targets: upstream.targets.clone(),
            next: AtomicUsize::new(0),
            connect_timeout: upstream.connect_timeout,
            request_timeout: upstream.request_timeout,
            tls: upstream.tls.clone(),
        }
    }

    /// `https` for TLS upstreams, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next target in round-robin order.
    pub fn pick(&self) -> &str {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.targets
            .get(n % self.targets.len().max(1))
            .map_or("", String::as_str)
    }

    /// TCP connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Time allowed for the response head.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// Pooled clients, one per connect timeout and TLS setting (the per-upstream client settings).
/// Owned by [`super::Proxy`], not by a routing table, so keep-alive connections survive table
/// swaps; a reload that changes an upstream's TLS files gets a new client (new connections).
#[derive(Debug, Default)]
pub struct Clients {
    by_settings: RwLock<HashMap<(Duration, Option<String>), HttpClient>>,
}

impl Clients {
    /// The client for this upstream's settings, created on first use.
    pub fn get(&self, pool: &UpstreamPool) -> HttpClient {
        let key = (
            pool.connect_timeout,
            pool.tls.as_ref().map(UpstreamTls::cache_key),
        );
        if let Ok(map) = self.by_settings.read()
            && let Some(client) = map.get(&key)
        {
            return client.clone();
        }
        let mut map = match self.by_settings.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key)
            .or_insert_with(|| new_client(pool.connect_timeout, pool.tls.as_ref()))
            .clone()
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
    client: &HttpClient,
    pool: &UpstreamPool,
    target: &str,
    req: Request<ProxyBody>,
) -> Result<Response<Incoming>, ProxyError> {
    let result = tokio::time::timeout(pool.request_timeout, client.request(req)).await;
    match result {
        Ok(Ok(response)) => Ok(response),
        Err(_elapsed) => Err(ProxyError::UpstreamTimeout {
            upstream: pool.name.clone(),
            target: target.to_owned(),
            timeout: pool.request_timeout,
        }),
        Ok(Err(e)) if e.is_connect() => Err(ProxyError::UpstreamConnect {
            upstream: pool.name.clone(),
            target: target.to_owned(),
            source: Box::new(e),
        }),
        Ok(Err(e)) => Err(ProxyError::Upstream {
            upstream: pool.name.clone(),
            target: target.to_owned(),
            source: Box::new(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_targets() {
        let pool = UpstreamPool::new(&Upstream {
            name: "u".into(),
            targets: vec!["a:1".into(), "b:2".into()],
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            tls: None,
        });
        let picks: Vec<&str> = (0..4).map(|_| pool.pick()).collect();
        assert_eq!(picks, ["a:1", "b:2", "a:1", "b:2"]);
    }
}
