//! The proxy's side of the plugins' `http-client` import: [`ProxyFetcher`] sends a plugin's
//! request to a named upstream of the *current* routing table, with the same pooled clients,
//! round-robin, connect timeout and path rule as proxied traffic.
//!
//! The runtime checks the plugin's `fetch` allow-list before calling here; this side only knows
//! upstreams by name, so a plugin can never pick an address (link-local metadata services
//! included) that the operator did not configure as an upstream target.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
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
        Box::pin(send(client, pool, limit, req))
    }
}

async fn send(
    client: HttpClient,
    pool: Arc<UpstreamPool>,
    limit: u64,
    req: FetchRequest,
) -> Result<FetchResponse, String> {
    let name = pool.name().to_owned();
    let target = pool.pick().to_owned();
    let timeout = req.timeout.unwrap_or_else(|| pool.request_timeout());
    let request = build(pool.scheme(), &target, req)?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            tracing::debug!(upstream = name, target, error = %e, "fetch failed");
            if e.is_connect() {
                format!("upstream `{name}` is unreachable")
            } else {
                format!("the exchange with upstream `{name}` failed")
            }
        })?;
        let (mut head, body) = response.into_parts();
        let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    format!("upstream `{name}` sent a response body larger than {limit} bytes")
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

/// The request on the wire: path by the gateway's rule, hop-by-hop headers gone, framing set by
/// the gateway.
fn build(
    scheme: &str,
    target: &str,
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
    let mut uri = format!("{scheme}://{target}{path}");
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    let uri: Uri = uri.parse().map_err(|e| format!("bad path or query: {e}"))?;
    let mut headers = req.headers;
    headers::strip_hop_by_hop(&mut headers);
    headers.remove(CONTENT_LENGTH);
    headers.remove(TRANSFER_ENCODING);
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
