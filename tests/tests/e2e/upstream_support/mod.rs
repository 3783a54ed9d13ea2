//! Shared pieces of the upstream health, balancing and retry scenarios: targets whose health
//! endpoint can be switched, and the admin's view of upstreams.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use tollgate_tests::{Gateway, Reply, Upstream, client, echo_response, get, send};

/// A target named `name`: `GET /health` answers with the status in `health` (and counts the
/// checks in `checks`), every other request is echoed as JSON with `"upstream": name`.
pub struct Target {
    pub server: Upstream,
    pub health: Arc<AtomicU16>,
    pub checks: Arc<AtomicUsize>,
}

impl Target {
    pub async fn start(name: &str) -> Self {
        let health = Arc::new(AtomicU16::new(200));
        let checks = Arc::new(AtomicUsize::new(0));
        let (h, c, name) = (health.clone(), checks.clone(), name.to_owned());
        let server = Upstream::start(Arc::new(move |req| {
            let (h, c, name) = (h.clone(), c.clone(), name.clone());
            Box::pin(async move {
                if req.uri().path() == "/health" {
                    c.fetch_add(1, Ordering::SeqCst);
                    let status = StatusCode::from_u16(h.load(Ordering::SeqCst)).unwrap();
                    return Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                }
                echo_response(&name, &req)
            })
        }))
        .await;
        Self {
            server,
            health,
            checks,
        }
    }

    pub fn target(&self) -> String {
        self.server.target()
    }

    pub fn set_health(&self, status: u16) {
        self.health.store(status, Ordering::SeqCst);
    }

    pub fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

/// A gateway config with an admin listener and one route `/` to upstream `app`, whose table is
/// `upstream` (targets and any other fields, as TOML lines).
pub fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.app]
{upstream}

[[routes]]
name = "app"
path_prefix = "/"
upstream = "app"
"#
    )
}

/// Which target answered (the echo's `upstream` field), or the gateway's error code.
pub fn served_by(reply: &Reply) -> String {
    let body = reply.json();
    match body["upstream"].as_str() {
        Some(name) if reply.status == StatusCode::OK => name.to_owned(),
        _ => format!("{} {}", reply.status.as_u16(), body["error"]),
    }
}

/// `GET /admin/upstreams` as JSON.
pub async fn upstreams(gateway: &Gateway) -> serde_json::Value {
    let admin = gateway.admin.expect("config has an [admin] listener");
    let reply = get(&format!("http://{admin}/admin/upstreams"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()
}

/// `GET /metrics` on the admin listener as text.
pub async fn metrics(gateway: &Gateway) -> String {
    let admin = gateway.admin.expect("config has an [admin] listener");
    let reply = get(&format!("http://{admin}/metrics"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// `n` sequential GETs of `path`, returning who served each.
pub async fn spread(gateway: &Gateway, path: &str, n: usize) -> Vec<String> {
    let client = client();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let reply = send(
            &client,
            http::Method::GET,
            &gateway.url(path),
            &[],
            Bytes::new(),
        )
        .await;
        out.push(served_by(&reply));
    }
    out
}

/// Poll `probe` every 20 ms until it is true; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if probe().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
