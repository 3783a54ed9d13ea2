//! Upstreams: targets with their settings, and pooled keep-alive HTTP clients that outlive routing
//! table swaps. Target selection is in `balance`, health in `health`, retries in `retry`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::ProxyBody;
use super::connector::Connector;
use super::error::ProxyError;
use super::health::UpstreamState;
use crate::config::{Upstream, UpstreamTls};

/// The HTTP client used for upstream calls (TLS for `https://` upstreams: `connector.rs`).
pub type HttpClient = Client<Connector, ProxyBody>;

/// An upstream's targets and settings, for one routing table.
#[derive(Debug)]
pub struct UpstreamPool {
    /// The upstream as configured: targets, timeouts, TLS, balancing, health and retries.
    spec: Upstream,
    next: AtomicUsize,
    /// Target health, in-flight counts and the retry budget: carried from table to table by
    /// [`super::health::HealthRegistry`] while the upstream is unchanged.
    shared: OnceLock<Arc<UpstreamState>>,
    /// Which pooled client serves this upstream, computed once (the TLS part hashes files'
    /// digests) rather than on every request.
    client_key: ClientKey,
}

/// Connect timeout and the TLS settings' cache key: what makes two upstreams' clients differ.
type ClientKey = (Duration, Option<String>);

impl UpstreamPool {
    /// Build from the config; `targets` must not be empty (checked by the routing table).
    pub fn new(upstream: &Upstream) -> Self {
        Self {
            spec: upstream.clone(),
            next: AtomicUsize::new(0),
            shared: OnceLock::new(),
            client_key: (
                upstream.connect_timeout,
                upstream.tls.as_ref().map(UpstreamTls::cache_key),
            ),
        }
    }

    /// The upstream's config.
    pub fn spec(&self) -> &Upstream {
        &self.spec
    }

    /// Live target state (fresh, unless a registry adopted this pool first).
    pub fn shared(&self) -> &Arc<UpstreamState> {
        self.shared
            .get_or_init(|| Arc::new(UpstreamState::new(&self.spec)))
    }

    /// Use `state` (kept from an earlier table) if this pool has no state yet.
    pub(crate) fn adopt(&self, state: Arc<UpstreamState>) {
        let _ = self.shared.set(state);
    }

    /// The rotating counter behind round-robin.
    pub(crate) fn rotation(&self) -> &AtomicUsize {
        &self.next
    }

    /// `https` for TLS upstreams, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.spec.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The next available target (see `balance`), or the next in turn when none is available.
    /// For one-off calls that need no retries or in-flight count (plugins' fetches).
    pub fn pick(&self) -> &str {
        if let Some(pick) = super::balance::pick(self, &[])
            && let Some(target) = self.spec.targets.get(pick.index())
        {
            return target;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let targets = &self.spec.targets;
        targets
            .get(n % targets.len().max(1))
            .map_or("", String::as_str)
    }

    /// TCP connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.spec.connect_timeout
    }

    /// Time allowed for the response head.
    pub fn request_timeout(&self) -> Duration {
        self.spec.request_timeout
    }

    /// Whether plugins may `fetch` from link-local targets of this upstream.
    pub fn allow_link_local(&self) -> bool {
        self.spec.allow_link_local
    }
}

/// Pooled clients, one per connect timeout and TLS setting (the per-upstream client settings).
/// Owned by [`super::Proxy`], not by a routing table, so keep-alive connections survive table
/// swaps; a reload that changes an upstream's TLS files gets a new client (new connections).
#[derive(Debug, Default)]
pub struct Clients {
    by_settings: RwLock<HashMap<ClientKey, HttpClient>>,
}

impl Clients {
    /// The client for this upstream's settings, created on first use.
    pub fn get(&self, pool: &UpstreamPool) -> HttpClient {
        let key = &pool.client_key;
        if let Ok(map) = self.by_settings.read()
            && let Some(client) = map.get(key)
        {
            return client.clone();
        }
        let mut map = match self.by_settings.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key.clone())
            .or_insert_with(|| new_client(pool.spec.connect_timeout, pool.spec.tls.as_ref()))
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
    let result = tokio::time::timeout(pool.spec.request_timeout, client.request(req)).await;
    match result {
        Ok(Ok(response)) => Ok(response),
        Err(_elapsed) => Err(ProxyError::UpstreamTimeout {
            upstream: pool.spec.name.clone(),
            target: target.to_owned(),
            timeout: pool.spec.request_timeout,
        }),
        Ok(Err(e)) if e.is_connect() => Err(ProxyError::UpstreamConnect {
            upstream: pool.spec.name.clone(),
            target: target.to_owned(),
            source: Box::new(e),
        }),
        Ok(Err(e)) => Err(ProxyError::Upstream {
            upstream: pool.spec.name.clone(),
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
            ..Upstream::default()
        });
        let picks: Vec<&str> = (0..4).map(|_| pool.pick()).collect();
        assert_eq!(picks, ["a:1", "b:2", "a:1", "b:2"]);
    }
}
