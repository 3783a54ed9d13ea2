//! [`Proxy`]: the live routing table, swapped atomically on reload, and the upstream clients that
//! outlive every table.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;

use super::body::ProxyBody;
use super::error::BoxError;
use super::fetch::ProxyFetcher;
use super::handler;
use super::routing::RoutingTable;
use super::tally::Tally;
use super::upstream::Clients;
use super::upstream::health::HealthRegistry;
use crate::access_log::AccessLog;
use crate::chain::Fetcher;
use crate::telemetry::Tracer;
use crate::tls::ConnectionInfo;

/// The proxy: what `serve` runs requests against.
#[derive(Debug)]
pub struct Proxy {
    table: ArcSwap<RoutingTable>,
    /// Pools for callers that are not workers (health checks); workers have their own.
    clients: Arc<Clients>,
    /// The admin listener's bound address, which plugins may never `fetch` from.
    admin: OnceLock<SocketAddr>,
    /// Upstream health and checkers, carried across tables.
    health: Mutex<HealthRegistry>,
    access_log: ArcSwapOption<AccessLog>,
    /// The trace exporter (`[telemetry]`), set once at start; unset, requests pay one branch.
    tracer: OnceLock<Tracer>,
    /// The usage tally reported to a control plane, set once when following one; unset,
    /// requests pay one branch.
    tally: OnceLock<Arc<Tally>>,
}

impl Proxy {
    /// A proxy serving `table`.
    pub fn new(table: RoutingTable) -> Self {
        let clients = Arc::new(Clients::default());
        let mut health = HealthRegistry::default();
        health.adopt(table.upstream_pools(), &clients);
        Self {
            table: ArcSwap::from_pointee(table),
            admin: OnceLock::new(),
            clients,
            health: Mutex::new(health),
            access_log: ArcSwapOption::empty(),
            tracer: OnceLock::new(),
            tally: OnceLock::new(),
        }
    }

    /// Record the admin listener's bound address (once, after binding), so that plugins'
    /// fetches to it are refused whatever upstream names it.
    pub fn set_admin_addr(&self, addr: SocketAddr) {
        let _ = self.admin.set(addr);
    }

    /// The admin listener's bound address, when there is one.
    pub(crate) fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.get().copied()
    }

    /// Replace the routing table atomically and return the old one. Requests in flight keep the
    /// table they started with; upstream connections are kept, and so is the health of every
    /// upstream whose config did not change (health checks of removed upstreams stop).
    pub fn swap(&self, mut table: RoutingTable) -> Arc<RoutingTable> {
        table.share_budget(&self.table.load());
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.adopt(table.upstream_pools(), &self.clients);
        self.table.swap(Arc::new(table))
    }

    /// Write the access log to `log` from now on (`None`: no access log).
    pub fn set_access_log(&self, log: Option<Arc<AccessLog>>) {
        self.access_log.store(log);
    }

    /// The access log currently written, if any.
    pub fn access_log(&self) -> Option<Arc<AccessLog>> {
        self.access_log.load_full()
    }

    /// Export traces through `tracer` from now on (once; later calls change nothing).
    pub fn set_tracer(&self, tracer: Tracer) {
        let _ = self.tracer.set(tracer);
    }

    /// Count finished requests into `tally` from now on (once; later calls change nothing).
    pub fn set_tally(&self, tally: Arc<Tally>) {
        let _ = self.tally.set(tally);
    }

    /// The current routing table.
    pub fn table(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// The pooled upstream clients of this thread: the worker's own, or the shared ones.
    pub(crate) fn clients(&self) -> Arc<Clients> {
        Clients::for_worker().unwrap_or_else(|| self.clients.clone())
    }

    /// A [`Fetcher`] for plugins' `http-client` calls through this proxy's current upstreams.
    /// It holds the proxy weakly, so handing it to the runtime makes no reference cycle.
    pub fn fetcher(self: &Arc<Self>) -> Arc<dyn Fetcher> {
        Arc::new(ProxyFetcher::new(self))
    }

    /// Serve one request from the TCP peer `peer` (the client address is worked out from it and
    /// the trusted proxies, see [`super::client`]) on the connection `conn` (its TLS session and
    /// plain-HTTP policy, from the listener).
    pub async fn handle<B>(
        &self,
        peer: IpAddr,
        conn: ConnectionInfo,
        req: Request<B>,
    ) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        // Pin one table for the whole exchange: a swap must not change route or chain under it.
        let clients = self.clients();
        let (table, log, tracer) = (self.table(), self.access_log(), self.tracer.get());
        let observers = handler::Observers {
            access_log: log,
            tracer,
            tally: self.tally.get().cloned(),
        };
        handler::handle(table, &clients, peer, conn, req, observers).await
    }
}
