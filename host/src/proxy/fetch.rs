//! The proxy's side of the plugins' `http-client` import: [`ProxyFetcher`] sends a plugin's
//! request to a named upstream of the *current* routing table, with the same pooled clients,
//! round-robin, connect timeout and path rule as proxied traffic.
//!
//! The runtime checks the plugin's `fetch` allow-list before calling here; this side only knows
//! upstreams by name, so a plugin can never pick an address that the operator did not configure
//! as an upstream target. On top of that, every fetch is checked where it lands:
//!
//! - the plugin fills only the path and query: the scheme is `http`, the authority is the
//!   target, and the `Host` header is the target's, whatever headers the plugin sent;
//! - the target is resolved here and the connection goes to the address that was checked (no
//!   second lookup that DNS could answer differently): an address in 169.254.0.0/16 or
//!   fe80::/10 (cloud metadata services) is refused unless the upstream sets
//!   `allow_link_local = true`, and the admin listener's address is always refused;
//! - the wait is at most the request's `timeout-ms`, never more than the upstream's
//!   `request_timeout_ms`, and the response body at most `limits.max_response_body_bytes`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderValue, Method, Request, Uri, Version};
use http_body_util::{BodyExt, Limited};

use super::body::full;
use super::gateway::Proxy;
use super::headers;
use super::upstream::{HttpClient, UpstreamPool};
use crate::chain::{FetchRequest, FetchResponse, Fetcher};
use crate::path::normalize_path;

/// Sends plugin requests through a [`Proxy`]. Holds the proxy weakly: plugins are owned (through
/// their chains) by the proxy's routing table, and must not keep it alive.
#[derive(Debug, Clone)]
pub struct ProxyFetcher {
    proxy: Weak<Proxy>,
}

impl ProxyFetcher {
    /// A fetcher for `proxy`.
    pub fn new(proxy: &Arc<Proxy>) -> Self {
        Self {
            proxy: Arc::downgrade(proxy),
        }
    }
}

impl Fetcher for ProxyFetcher {
    fn fetch(
        &self,
        upstream: &str,
        req: FetchRequest,
    ) -> BoxFuture<'static, Result<FetchResponse, String>> {
        let Some(proxy) = self.proxy.upgrade() else {
            return Box::pin(async { Err("the gateway is shutting down".to_owned()) });
        };
        // Resolve against the table serving now: a reload changes upstreams and targets.
        let table = proxy.table();
        let Some(pool) = table.upstream(upstream).cloned() else {
            let message = format!("upstream `{upstream}` is not defined in the current config");
            return Box::pin(async move { Err(message) });
        };
        let limit = table.limits().max_response_body_bytes;
        let client = proxy.clients().get(&pool);
        let admin = proxy.admin_addr();
        Box::pin(send(client, pool, limit, admin, req))
    }
}

async fn send(
    client: HttpClient,
    pool: Arc<UpstreamPool>,
    limit: u64,
    admin: Option<SocketAddr>,
    req: FetchRequest,
) -> Result<FetchResponse, String> {
    let name = pool.name().to_owned();
    let target = pool.pick().to_owned();
    // A plugin may shorten the upstream's timeout, never extend it.
    let timeout = req
        .timeout
        .map_or(pool.request_timeout(), |t| t.min(pool.request_timeout()));
    let exchange = async {
        let addr = resolve(&name, &target, pool.allow_link_local(), admin).await?;
        let request = build(pool.scheme(), &target, addr, req)?;
        let response = client.request(request).await.map_err(|e| {
            tracing::debug!(upstream = name, target, error = %e, "fetch failed");
            if e.is_connect() {
                format!("upstream `{name}` is unreachable")
            } else {
                format!("the exchange with upstream `{name}` failed")
            }
        })?;
        let (mut head, body) = response.into_parts();
        let too_large = || {
            format!(
                "upstream `{name}` sent a response body larger than {limit} bytes \
                 (limits.max_response_body_bytes)"
            )
        };
        let declared = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    tracing::debug!(upstream = name, target, error = %e, "fetch body failed");
                    format!("the exchange with upstream `{name}` failed")
                }
            })?
            .to_bytes();
        headers::strip_hop_by_hop(&mut head.headers);
        Ok(FetchResponse {
            status: head.status,
            headers: head.headers,
            body,
        })
    };
    let result = match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "upstream `{name}` did not answer within {} ms",
            millis(timeout)
        )),
    };
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("tollgate_plugin_fetch_total", "upstream" => name, "result" => outcome)
        .increment(1);
    result
}

/// The address to connect to for `target` (`host:port`): the first address it resolves to that
/// plugins may reach.
async fn resolve(
    upstream: &str,
    target: &str,
    allow_link_local: bool,
    admin: Option<SocketAddr>,
) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = match target.parse::<SocketAddr>() {
        Ok(addr) => vec![addr],
        Err(_) => tokio::net::lookup_host(target)
            .await
            .map_err(|e| {
                tracing::debug!(upstream, target, error = %e, "fetch: lookup failed");
                format!("upstream `{upstream}`: target `{target}` could not be resolved")
            })?
            .collect(),
    };
    let mut refused = None;
    for addr in addrs {
        match refusal(addr, allow_link_local, admin) {
            None => return Ok(addr),
            Some(why) => refused = refused.or(Some((addr, why))),
        }
    }
    Err(match refused {
        Some((addr, why)) => {
            tracing::warn!(upstream, target, %addr, "fetch refused: {why}");
            let shown = if target.parse::<SocketAddr>().is_ok() {
                format!("target `{target}`")
            } else {
                format!("target `{target}` ({addr})")
            };
            format!("upstream `{upstream}`: {shown} {why}")
        }
        None => format!("upstream `{upstream}`: target `{target}` has no address"),
    })
}

/// Why plugins may not reach `addr`, if they may not.
fn refusal(
    addr: SocketAddr,
    allow_link_local: bool,
    admin: Option<SocketAddr>,
) -> Option<&'static str> {
    let ip = addr.ip().to_canonical();
    if let Some(admin) = admin {
        let admin_ip = admin.ip().to_canonical();
        // A connection to the unspecified address reaches the local host, and a listener on
        // it takes connections to every local address.
        let same_host = ip == admin_ip || ip.is_unspecified() || admin_ip.is_unspecified();
        if addr.port() == admin.port() && same_host {
            return Some("is the gateway's admin listener, which plugins may not fetch from");
        }
    }
    if !allow_link_local && is_link_local(ip) {
        return Some(
            "is a link-local address (169.254.0.0/16, fe80::/10); plugins may fetch from it \
             only when the upstream sets `allow_link_local = true`",
        );
    }
    None
}

/// 169.254.0.0/16 or fe80::/10 (IPv4-mapped addresses already made canonical).
fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The request on the wire: sent to the checked address `addr` of `target`, path by the
/// gateway's rule, `Host` the target's, hop-by-hop headers gone, framing set by the gateway.
fn build(
    scheme: &str,
    target: &str,
    addr: SocketAddr,
    req: FetchRequest,
) -> Result<Request<super::body::ProxyBody>, String> {
    let (path, query) = match req.path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (req.path_and_query.as_str(), None),
    };
    if query.is_some_and(|q| q.contains('#')) {
        return Err("fragments (`#`) cannot be sent".to_owned());
    }
    let path = normalize_path(path).map_err(|e| format!("bad path: {e}"))?;
    // Plain HTTP goes to the checked address itself (no second lookup); TLS needs the name for
    // SNI and certificate checks, and the certificate pins the peer to that name anyway.
    let mut uri = if scheme == "https" {
        format!("https://{target}{path}")
    } else {
        format!("http://{addr}{path}")
    };
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    let uri: Uri = uri.parse().map_err(|e| format!("bad path or query: {e}"))?;
    let mut headers = req.headers;
    headers::strip_hop_by_hop(&mut headers);
    headers.remove(CONTENT_LENGTH);
    headers.remove(TRANSFER_ENCODING);
    // The plugin chooses the path, never the host: the upstream sees its own target name.
    let host = HeaderValue::from_str(target).map_err(|_| format!("bad target `{target}`"))?;
    headers.insert(HOST, host);
    let sends_body =
        !req.body.is_empty() || matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
    if sends_body {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(req.body.len()));
    }
    let mut request = Request::new(full(req.body));
    *request.method_mut() = req.method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Ok(request)
}

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use bytes::Bytes;
    use http::HeaderMap;

    use super::*;

    fn req(path_and_query: &str, headers: &[(&str, &str)]) -> FetchRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        FetchRequest {
            method: Method::GET,
            path_and_query: path_and_query.to_owned(),
            headers: map,
            body: Bytes::new(),
            timeout: None,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_plugin_fills_path_and_query_never_the_host() {
        let to = addr("10.0.0.7:8080");
        for (path, expected) in [
            ("//evil.example/x?y=1", "/evil.example/x"),
            ("/@evil.example/x", "/@evil.example/x"),
            ("/a/../b", "/b"),
        ] {
            let built = build("http", "users.internal:8080", to, req(path, &[])).unwrap();
            assert_eq!(built.uri().authority().unwrap().as_str(), "10.0.0.7:8080");
            assert_eq!(built.uri().scheme_str(), Some("http"));
            assert_eq!(built.uri().path(), expected, "{path}");
        }
        let built = build(
            "http",
            "users.internal:8080",
            to,
            req("/x", &[("host", "metadata.google.internal")]),
        )
        .unwrap();
        let hosts: Vec<_> = built.headers().get_all(HOST).iter().collect();
        assert_eq!(hosts, ["users.internal:8080"]);
    }

    #[test]
    fn bad_paths_are_refused() {
        let to = addr("10.0.0.7:80");
        for bad in ["/a%2Fb", "/x?y#z", "/../x", "/a b"] {
            assert!(
                build("http", "t:80", to, req(bad, &[])).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn link_local_targets_need_the_upstreams_opt_in() {
        for ip in [
            "169.254.169.254:80",
            "169.254.0.1:80",
            "[fe80::1]:80",
            "[febf::1]:80",
            "[::ffff:169.254.169.254]:80",
        ] {
            let a = addr(ip);
            assert!(
                refusal(a, false, None).unwrap().contains("link-local"),
                "{ip}"
            );
            assert_eq!(refusal(a, true, None), None, "{ip}");
        }
        for ip in [
            "10.0.0.1:80",
            "127.0.0.1:80",
            "[fec0::1]:80",
            "169.253.255.255:80",
        ] {
            assert_eq!(refusal(addr(ip), false, None), None, "{ip}");
        }
    }

    #[test]
    fn the_admin_listener_is_always_refused() {
        let admin = Some(addr("127.0.0.1:9090"));
        for ip in ["127.0.0.1:9090", "0.0.0.0:9090", "[::ffff:127.0.0.1]:9090"] {
            let why = refusal(addr(ip), true, admin).unwrap();
            assert!(why.contains("admin listener"), "{ip}");
        }
        for ip in ["127.0.0.1:9091", "10.0.0.1:9090", "[::1]:9090"] {
            assert_eq!(refusal(addr(ip), true, admin), None, "{ip}");
        }
        let any = Some(addr("0.0.0.0:9090"));
        assert!(refusal(addr("127.0.0.5:9090"), false, any).is_some());
    }

    #[tokio::test]
    async fn resolution_names_the_refused_target() {
        let err = resolve("meta", "169.254.169.254:80", false, None)
            .await
            .unwrap_err();
        assert!(
            err.starts_with("upstream `meta`: target `169.254.169.254:80` is a link-local address"),
            "{err}"
        );
        let ok = resolve("meta", "169.254.169.254:80", true, None).await;
        assert_eq!(ok, Ok(addr("169.254.169.254:80")));
        let ok = resolve("local", "localhost:8080", false, None)
            .await
            .unwrap();
        assert!(ok.ip().is_loopback() && ok.port() == 8080, "{ok}");
    }
}
