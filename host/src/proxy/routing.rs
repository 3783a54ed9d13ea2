//! The routing table: routes with their chains and upstreams, and the limits, built from one
//! config and swapped as a whole.
//!
//! Precedence: a route naming the host beats a host-less one (an exact host beats a wildcard, a
//! longer wildcard a shorter one); then an exact path beats a prefix, and a longer prefix a
//! shorter one; ties go to the route that comes first in the file. The most specific route whose
//! method list allows the method wins; when routes match host and path but none allows the
//! method, the answer is 405 with `Allow`; when none matches at all, 404.
//!
//! Routes match the normalised path read without `;` parameters ([`without_params`]), the way
//! Tomcat, Jetty, Spring and the `rbac` plugin read it, so `/admin;x` and `/admin%3Bx` take the
//! `/admin` route and its chain, never a weaker one; the upstream still gets the path as
//! normalised. A route with `case_insensitive = true` also matches the path ignoring ASCII case.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::Method;
use http::uri::Authority;
use thiserror::Error;

use super::budget::BufferBudget;
use super::client::ClientPolicy;
use super::error::ProxyError;
use super::upstream::UpstreamPool;
use crate::chain::{
    Chain, Flow, LogEntry, PluginFailure, RequestOutcome, RequestState, ResponseState,
};
use crate::config::{Config, Deprecation, Limits, PathMatch};
use crate::path::{normalize_path, without_params};

/// Why a routing table could not be built from a config.
#[derive(Debug, Error)]
pub enum TableError {
    /// A route names an upstream the config does not define.
    #[error("route `{route}`: unknown upstream `{upstream}`")]
    UnknownUpstream {
        /// Route name.
        route: String,
        /// Upstream name.
        upstream: String,
    },
    /// An upstream has no targets.
    #[error("upstream `{upstream}` has no targets")]
    NoTargets {
        /// Upstream name.
        upstream: String,
    },
    /// A target is not `host:port`.
    #[error("upstream `{upstream}`: target `{target}` is not `host:port`")]
    BadTarget {
        /// Upstream name.
        upstream: String,
        /// The target as written.
        target: String,
    },
    /// A route has plugins but no chain was supplied for it.
    #[error("route `{route}` has plugins but no chain was built for it")]
    MissingChain {
        /// Route name.
        route: String,
    },
    /// A route's path is not in normalised form, so no normalised request path could match it.
    #[error("route `{route}`: path `{path}` is not normalised (expected `{expected}`)")]
    PathNotNormal {
        /// Route name.
        route: String,
        /// The path as written.
        path: String,
        /// Its normalised form, or the reason it has none.
        expected: String,
    },
}

/// A route ready to serve.
pub struct RouteEntry {
    /// Route name (metrics, logs, `RequestState::route`).
    pub name: Arc<str>,
    hosts: Vec<HostPattern>,
    /// Lower case when `case_insensitive`.
    path: PathMatch,
    case_insensitive: bool,
    methods: Vec<Method>,
    /// Where matching requests go.
    pub upstream: Arc<UpstreamPool>,
    /// The plugins they go through.
    pub chain: Arc<dyn Chain>,
    /// Headers added to every response of the route, built at config load (`deprecated`, ...).
    pub deprecation: Option<Arc<Deprecation>>,
}

impl fmt::Debug for RouteEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteEntry")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .field("path", &self.path)
            .field("methods", &self.methods)
            .field("upstream", &self.upstream.name())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum HostPattern {
    Exact(String),
    /// The suffix including its leading dot: `*.example.com` is stored as `.example.com`.
    Wildcard(String),
}

/// How specifically a route matched; compared field by field, larger is more specific.
type Specificity = (u8, usize, bool, usize);

impl RouteEntry {
    fn host_rank(&self, host: &str) -> Option<(u8, usize)> {
        if self.hosts.is_empty() {
            return Some((0, 0));
        }
        self.hosts
            .iter()
            .filter_map(|pattern| match pattern {
                HostPattern::Exact(h) if h == host => Some((2, h.len())),
                HostPattern::Wildcard(suffix)
                    if host.len() > suffix.len() && host.ends_with(suffix.as_str()) =>
                {
                    Some((1, suffix.len()))
                }
                _ => None,
            })
            .max()
    }

    /// `path` is the request's routing path; `lower` the same in lower case.
    fn path_rank(&self, path: &str, lower: &str) -> Option<(bool, usize)> {
        let path = if self.case_insensitive { lower } else { path };
        match &self.path {
            PathMatch::Exact(p) => (p == path).then_some((true, p.len())),
            PathMatch::Prefix(p) => {
                let at_boundary = p.ends_with('/')
                    || path.len() == p.len()
                    || path.as_bytes().get(p.len()) == Some(&b'/');
                (path.starts_with(p.as_str()) && at_boundary).then_some((false, p.len()))
            }
        }
    }

    fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }
}

/// Everything a request needs from the config, swapped atomically as one value.
#[derive(Debug)]
pub struct RoutingTable {
    routes: Vec<RouteEntry>,
    upstreams: HashMap<String, Arc<UpstreamPool>>,
    limits: Limits,
    client: ClientPolicy,
    /// Shared with the tables before and after this one (see [`RoutingTable::share_budget`]).
    buffer: Arc<BufferBudget>,
    /// Query parameters the access log masks (`crate::access_log::secret_query_params`).
    secret_query: Vec<String>,
}

impl RoutingTable {
    /// Build a table from a validated config and the chains built for its routes (by route
    /// name). A route without plugins needs no chain; one with plugins must have one.
    pub fn new(
        config: &Config,
        mut chains: HashMap<String, Arc<dyn Chain>>,
    ) -> Result<RoutingTable, TableError> {
        let mut pools = HashMap::new();
        for (name, upstream) in &config.upstreams {
            if upstream.targets.is_empty() {
                return Err(TableError::NoTargets {
                    upstream: name.clone(),
                });
            }
            for target in &upstream.targets {
                let valid = target
                    .parse::<Authority>()
                    .is_ok_and(|a| a.port().is_some());
                if !valid {
                    return Err(TableError::BadTarget {
                        upstream: name.clone(),
                        target: target.clone(),
                    });
                }
            }
            pools.insert(name.clone(), Arc::new(UpstreamPool::new(upstream)));
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let upstream =
                pools
                    .get(&route.upstream)
                    .cloned()
                    .ok_or_else(|| TableError::UnknownUpstream {
                        route: route.name.to_string(),
                        upstream: route.upstream.clone(),
                    })?;
            let chain = match chains.remove(&*route.name) {
                Some(chain) => chain,
                None if route.chain.is_empty() => Arc::new(EmptyChain) as Arc<dyn Chain>,
                None => {
                    return Err(TableError::MissingChain {
                        route: route.name.to_string(),
                    });
                }
            };
            let pattern = match &route.path {
                PathMatch::Exact(p) | PathMatch::Prefix(p) => p,
            };
            let normal = normalize_path(pattern).map_err(|e| e.to_string());
            if normal.as_deref() != Ok(pattern.as_str()) {
                return Err(TableError::PathNotNormal {
                    route: route.name.to_string(),
                    path: pattern.clone(),
                    expected: normal.unwrap_or_else(|reason| reason),
                });
            }
            let hosts = route
                .hosts
                .iter()
                .map(|h| {
                    let h = h.trim_end_matches('.').to_ascii_lowercase();
                    match h.strip_prefix('*') {
                        Some(suffix) => HostPattern::Wildcard(suffix.to_owned()),
                        None => HostPattern::Exact(h),
                    }
                })
                .collect();
            let path = match (&route.path, route.case_insensitive) {
                (PathMatch::Exact(p), true) => PathMatch::Exact(p.to_ascii_lowercase()),
                (PathMatch::Prefix(p), true) => PathMatch::Prefix(p.to_ascii_lowercase()),
                (other, false) => other.clone(),
            };
            routes.push(RouteEntry {
                name: route.name.clone(),
                hosts,
                path,
                case_insensitive: route.case_insensitive,
                methods: route.methods.clone(),
                upstream,
                chain,
                deprecation: route.deprecation.clone(),
            });
        }
        Ok(RoutingTable {
            routes,
            upstreams: pools,
            limits: config.limits.clone(),
            client: ClientPolicy::new(&config.gateway),
            buffer: BufferBudget::new(config.limits.max_buffered_bytes),
            secret_query: crate::access_log::secret_query_params(config),
        })
    }

    /// A table with no routes (every request gets 404) and default settings.
    pub fn empty() -> RoutingTable {
        RoutingTable {
            routes: Vec::new(),
            upstreams: HashMap::new(),
            limits: Limits::default(),
            client: ClientPolicy::default(),
            buffer: BufferBudget::new(Limits::default().max_buffered_bytes),
            secret_query: crate::access_log::SECRET_QUERY_PARAMS
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
        }
    }

    /// Query parameters whose values the access log masks.
    pub fn secret_query_params(&self) -> &[String] {
        &self.secret_query
    }

    /// Take over `previous`'s buffer budget with this table's limit, so bytes held by requests
    /// still running on it keep counting (a reload).
    pub fn share_budget(&mut self, previous: &RoutingTable) {
        previous.buffer.set_limit(self.limits.max_buffered_bytes);
        self.buffer = previous.buffer.clone();
    }

    /// The cap on request-body bytes buffered for plugins across all requests.
    pub fn buffer_budget(&self) -> &Arc<BufferBudget> {
        &self.buffer
    }

    /// Request limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Trusted proxies, identity headers and header-name rules.
    pub fn client_policy(&self) -> &ClientPolicy {
        &self.client
    }

    /// Every upstream of the config by name, routed to or not (plugins may `fetch` from any).
    pub fn upstream(&self, name: &str) -> Option<&Arc<UpstreamPool>> {
        self.upstreams.get(name)
    }

    /// Every upstream of the config, in no particular order.
    pub fn upstream_pools(&self) -> impl Iterator<Item = &Arc<UpstreamPool>> {
        self.upstreams.values()
    }

    /// Routes in config order.
    pub fn routes(&self) -> &[RouteEntry] {
        &self.routes
    }

    /// Find the route for a request. `host` is lower case without port (empty when the request
    /// named none); `path` is normalised (and is read here without `;` parameters).
    pub fn route(
        &self,
        host: &str,
        path: &str,
        method: &Method,
    ) -> Result<&RouteEntry, ProxyError> {
        let path = without_params(path);
        // Lower-cased only when some route asks for it: nothing is allocated otherwise.
        let lower = if self.routes.iter().any(|r| r.case_insensitive) {
            std::borrow::Cow::Owned(path.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(path.as_ref())
        };
        let mut best: Option<(Specificity, &RouteEntry)> = None;
        let mut path_matched = false;
        let mut allow: Vec<Method> = Vec::new();
        for route in &self.routes {
            let Some((host_class, host_len)) = route.host_rank(host) else {
                continue;
            };
            let Some((exact, path_len)) = route.path_rank(&path, &lower) else {
                continue;
            };
            path_matched = true;
            if !route.allows(method) {
                for m in &route.methods {
                    if !allow.contains(m) {
                        allow.push(m.clone());
                    }
                }
                continue;
            }
            let rank = (host_class, host_len, exact, path_len);
            if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                best = Some((rank, route));
            }
        }
        match best {
            Some((_, route)) => Ok(route),
            None if path_matched => {
                allow.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                Err(ProxyError::MethodNotAllowed {
                    method: method.clone(),
                    allow,
                })
            }
            None => Err(ProxyError::NoRoute),
        }
    }
}

/// The chain of a route without plugins.
struct EmptyChain;

impl Chain for EmptyChain {
    fn is_empty(&self) -> bool {
        true
    }

    fn needs_request_body(&self) -> bool {
        false
    }

    fn needs_response_body(&self) -> bool {
        false
    }

    fn wants_log(&self) -> bool {
        false
    }

    fn reads_request_after_forward(&self) -> bool {
        false
    }

    fn on_request<'a>(
        &'a self,
        _req: &'a mut RequestState,
    ) -> BoxFuture<'a, Result<RequestOutcome, PluginFailure>> {
        Box::pin(async {
            Ok(RequestOutcome {
                ran: 0,
                flow: Flow::Continue,
            })
        })
    }

    fn on_response<'a>(
        &'a self,
        _req: &'a mut RequestState,
        _resp: &'a mut ResponseState,
        _ran: usize,
    ) -> BoxFuture<'a, Result<Flow, PluginFailure>> {
        Box::pin(async { Ok(Flow::Continue) })
    }

    fn on_log(&self, _req: RequestState, _entry: LogEntry) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::config::{GatewaySettings, Route, Upstream};

    fn route(name: &str, hosts: &[&str], path: PathMatch, methods: &[Method]) -> Route {
        Route {
            name: Arc::from(name),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            path,
            methods: methods.to_vec(),
            upstream: "up".into(),
            chain: Vec::new(),
            case_insensitive: false,
            deprecation: None,
        }
    }

    fn config(routes: Vec<Route>) -> Config {
        let mut upstreams = BTreeMap::new();
        upstreams.insert(
            "up".to_owned(),
            Upstream {
                name: "up".into(),
                targets: vec!["127.0.0.1:1".into()],
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                ..Upstream::default()
            },
        );
        Config {
            source: PathBuf::new(),
            gateway: GatewaySettings {
                plugin_dir: PathBuf::new(),
                cache_dir: PathBuf::new(),
                watch: false,
                ..GatewaySettings::default()
            },
            listeners: Vec::new(),
            admin: None,
            limits: Limits::default(),
            server: Default::default(),
            state: Default::default(),
            upstreams,
            plugins: BTreeMap::new(),
            routes,
            access_log: Default::default(),
            telemetry: None,
        }
    }

    fn table(routes: Vec<Route>) -> RoutingTable {
        RoutingTable::new(&config(routes), HashMap::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hit(t: &RoutingTable, host: &str, path: &str, method: Method) -> String {
        match t.route(host, path, &method) {
            Ok(r) => r.name.to_string(),
            Err(e) => e.code().to_owned(),
        }
    }

    fn prefix(p: &str) -> PathMatch {
        PathMatch::Prefix(p.into())
    }

    #[test]
    fn longest_prefix_and_exact_win() {
        let t = table(vec![
            route("root", &[], prefix("/"), &[]),
            route("api", &[], prefix("/api"), &[]),
            route("api-v2", &[], prefix("/api/v2"), &[]),
            route("health", &[], PathMatch::Exact("/api/health".into()), &[]),
        ]);
        assert_eq!(hit(&t, "", "/", Method::GET), "root");
        assert_eq!(hit(&t, "", "/api", Method::GET), "api");
        assert_eq!(hit(&t, "", "/api/x", Method::GET), "api");
        assert_eq!(hit(&t, "", "/apix", Method::GET), "root");
        assert_eq!(hit(&t, "", "/api/v2/x", Method::GET), "api-v2");
        assert_eq!(hit(&t, "", "/api/v2", Method::GET), "api-v2");
        assert_eq!(hit(&t, "", "/api/v20", Method::GET), "api");
        assert_eq!(hit(&t, "", "/api/health", Method::GET), "health");
        assert_eq!(hit(&t, "", "/api/health/x", Method::GET), "api");
    }

    #[test]
    fn hosts_beat_hostless_routes() {
        let t = table(vec![
            route("any", &[], prefix("/"), &[]),
            route("wild", &["*.example.com"], prefix("/"), &[]),
            route("exact", &["api.example.com"], prefix("/"), &[]),
            route("deeper", &["*.eu.example.com"], prefix("/"), &[]),
        ]);
        assert_eq!(hit(&t, "api.example.com", "/x", Method::GET), "exact");
        assert_eq!(hit(&t, "www.example.com", "/x", Method::GET), "wild");
        assert_eq!(hit(&t, "a.b.example.com", "/x", Method::GET), "wild");
        assert_eq!(hit(&t, "a.eu.example.com", "/x", Method::GET), "deeper");
        assert_eq!(hit(&t, "example.com", "/x", Method::GET), "any");
        assert_eq!(hit(&t, "other.org", "/x", Method::GET), "any");
        assert_eq!(hit(&t, "", "/x", Method::GET), "any");
    }

    #[test]
    fn methods_fall_through_then_405() {
        let t = table(vec![
            route("read", &[], prefix("/items"), &[Method::GET, Method::HEAD]),
            route(
                "write",
                &[],
                PathMatch::Exact("/items".into()),
                &[Method::POST],
            ),
        ]);
        assert_eq!(hit(&t, "", "/items", Method::POST), "write");
        assert_eq!(hit(&t, "", "/items", Method::GET), "read");
        match t.route("", "/items", &Method::DELETE) {
            Err(ProxyError::MethodNotAllowed { allow, .. }) => {
                assert_eq!(allow, vec![Method::GET, Method::HEAD, Method::POST]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(hit(&t, "", "/other", Method::GET), "no_route");
    }

    #[test]
    fn parameters_and_escaped_semicolons_never_pick_a_weaker_route() {
        let t = table(vec![
            route("open", &[], prefix("/"), &[]),
            route("admin", &[], prefix("/admin"), &[]),
            route("login", &[], PathMatch::Exact("/login".into()), &[]),
        ]);
        for path in [
            "/admin;x",
            "/admin%3Bx",
            "/admin;jsessionid=1/users",
            "/;x/admin",
            "/admin/;x",
        ] {
            assert_eq!(hit(&t, "", path, Method::GET), "admin", "{path}");
        }
        assert_eq!(hit(&t, "", "/login;x", Method::GET), "login");
        assert_eq!(hit(&t, "", "/adminx;y", Method::GET), "open");
    }

    #[test]
    fn case_insensitive_routes_match_any_case() {
        let mut admin = route("admin", &[], prefix("/Admin"), &[]);
        admin.case_insensitive = true;
        let t = table(vec![route("open", &[], prefix("/"), &[]), admin]);
        for path in ["/admin", "/ADMIN/x", "/aDmIn;x", "/Admin"] {
            assert_eq!(hit(&t, "", path, Method::GET), "admin", "{path}");
        }
        let t = table(vec![
            route("open", &[], prefix("/"), &[]),
            route("admin", &[], prefix("/admin"), &[]),
        ]);
        assert_eq!(hit(&t, "", "/ADMIN", Method::GET), "open");
    }

    #[test]
    fn first_route_wins_a_tie() {
        let t = table(vec![
            route("a", &[], prefix("/x"), &[]),
            route("b", &[], prefix("/x"), &[]),
        ]);
        assert_eq!(hit(&t, "", "/x", Method::GET), "a");
    }

    #[test]
    fn unnormalised_route_paths_are_refused() {
        let built = RoutingTable::new(
            &config(vec![route("bad", &[], prefix("/a//b"), &[])]),
            HashMap::new(),
        );
        assert!(matches!(built, Err(TableError::PathNotNormal { .. })));
    }

    #[test]
    fn a_route_with_plugins_needs_a_chain() {
        let mut with_plugins = route("auth", &[], prefix("/"), &[]);
        with_plugins.chain = vec!["jwt".into()];
        let built = RoutingTable::new(&config(vec![with_plugins]), HashMap::new());
        assert!(matches!(built, Err(TableError::MissingChain { .. })));
    }
}
