//! The admin API, on its own listener (loopback by default): health, readiness, the active
//! config with secrets masked, reload, per-plugin statistics, per-consumer usage (from the meter
//! plugins' counters, see [`crate::usage`]) and Prometheus metrics. Endpoints are listed in
//! `docs/operations.md`.
//!
//! With `[admin] token_env` or `token_file` every request needs `Authorization: Bearer TOKEN`
//! (compared in constant time); without one it gets 401 and `WWW-Authenticate`. Off loopback a
//! token is mandatory (the config refuses to load otherwise).

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::{AdminToken, Config, OnError, PathMatch, StateSettings};
use crate::gateway::Gateway;
use crate::usage::UsageQuery;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Histogram buckets in seconds for every `tollgate_*` histogram: from 50 µs (a warm plugin
/// call) to 30 s (a slow upstream).
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Install the process-wide Prometheus recorder (once; later calls do nothing).
pub fn install_metrics_recorder() {
    PROMETHEUS.get_or_init(|| {
        let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
            Ok(builder) => builder,
            Err(e) => {
                tracing::warn!(error = %e, "histogram buckets refused; using summaries");
                PrometheusBuilder::new()
            }
        };
        match builder.install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// Serve the admin API until `shutdown` completes, then let requests in flight (a reload, say)
/// finish; the caller bounds that wait with the drain deadline. With a `token`, every request
/// must carry it; the token is the one read at start (a reload that changes it warns).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    token: Option<AdminToken>,
    shutdown: impl Future<Output = ()>,
) {
    let token = token.map(Arc::new);
    tokio::pin!(shutdown);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let gateway = gateway.clone();
        let token = token.clone();
        let service = service_fn(move |req| {
            let (gateway, token) = (gateway.clone(), token.clone());
            async move {
                match token.as_deref().and_then(|t| refuse_unauthorized(t, &req)) {
                    Some(refused) => Ok(refused),
                    None => handle(gateway, req).await,
                }
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn handle(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/admin/health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/admin/ready") => ready(&gateway),
        (&Method::GET, "/admin/config") => {
            json_response(StatusCode::OK, &config_json(&*gateway.config().await))
        }
        (&Method::GET, "/admin/plugins") => plugins(&gateway).await,
        (&Method::POST, "/admin/reload") => match gateway.reload().await {
            Ok(report) => json_response(
                StatusCode::OK,
                &json!({
                    "status": if report.unchanged { "unchanged" } else { "reloaded" },
                    "report": report,
                }),
            ),
            Err(e) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({
                    "error": "reload_failed",
                    "message": e.to_string(),
                    "issues": e.issues().iter().map(|i| json!({"path": i.path, "message": i.message})).collect::<Vec<_>>(),
                }),
            ),
        },
        (&Method::GET, "/admin/usage") => usage(&gateway, req.uri().query()).await,
        (&Method::GET, "/admin/upstreams") => json_response(
            StatusCode::OK,
            &crate::proxy::health::report(&gateway.proxy().table()),
        ),
        (&Method::GET, "/metrics") => match PROMETHEUS.get().and_then(Option::as_ref) {
            Some(handle) => Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(handle.render())))
                .unwrap_or_default(),
            None => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "metrics_disabled", "message": "no metrics recorder in this process"}),
            ),
        },
        (
            _,
            "/admin/health" | "/admin/ready" | "/admin/config" | "/admin/plugins" | "/admin/reload"
            | "/admin/usage" | "/metrics",
        ) => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method_not_allowed", "message": format!("{} is not allowed here", req.method())}),
        ),
        (_, path) => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "message": format!("no admin endpoint at {path}")}),
        ),
    };
    Ok(response)
}

/// Check `Authorization: Bearer TOKEN`: `None` when it is right, else the 401 (with
/// `WWW-Authenticate`) to send.
fn refuse_unauthorized(
    token: &AdminToken,
    req: &Request<Incoming>,
) -> Option<Response<Full<Bytes>>> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let (error, message) = match presented {
        Some(p) if constant_time_eq(p.as_bytes(), token.expose().as_bytes()) => return None,
        Some(_) => ("invalid_token", "the bearer token is not the admin token"),
        None => (
            "unauthorized",
            "the admin API needs `Authorization: Bearer <token>`",
        ),
    };
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": error, "message": message}),
    );
    let challenge = match error {
        "invalid_token" => "Bearer realm=\"tollgate-admin\", error=\"invalid_token\"",
        _ => "Bearer realm=\"tollgate-admin\"",
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static(challenge),
    );
    Some(response)
}

/// Compare SHA-256 digests with a branch-free fold: the time depends on neither the content nor
/// the length of what was presented.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    let diff = da
        .iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `GET /admin/ready`: 200 while serving, 503 before the listeners are up and during shutdown.
fn ready(gateway: &Gateway) -> Response<Full<Bytes>> {
    if gateway.is_ready() {
        json_response(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not_ready", "message": "the gateway is starting or shutting down"}),
        )
    }
}

/// `GET /admin/plugins`: every loaded plugin with its call statistics since it was loaded.
async fn plugins(gateway: &Gateway) -> Response<Full<Bytes>> {
    let plugins: Vec<_> = gateway
        .plugins()
        .await
        .iter()
        .map(|p| {
            let s = p.stats();
            let caps = p.capabilities();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            let mean = match s.calls {
                0 => 0.0,
                n => ms(s.total_call_time) / n as f64,
            };
            json!({
                "name": &**p.name(),
                "module": p.spec().module.display().to_string(),
                "fingerprint": p.fingerprint().to_string(),
                "phases": {
                    "request": caps.request,
                    "response": caps.response,
                    "log": caps.log,
                },
                "calls": s.calls,
                "errors": s.errors(),
                "traps": s.traps,
                "timeouts": s.timeouts,
                "memory_limits": s.memory_limits,
                "bad_actions": s.bad_actions,
                "unavailable": s.unavailable,
                "state_errors": s.state_errors,
                "state_unavailable": s.state_unavailable,
                "responses": s.responses,
                "call_ms": {
                    "p50": ms(s.p50_call_time),
                    "p99": ms(s.p99_call_time),
                    "mean": mean,
                    "last": ms(s.last_call_time),
                },
                "instances_created": s.instances_created,
                "idle_instances": s.idle_instances,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "plugins": plugins }))
}

/// The active config as JSON with every secret replaced by `"***"`: plugin config values under
/// keys that look secret (see [`looks_secret`]), PEM blocks anywhere, the admin token and the
/// password in the state URL.
pub fn config_json(config: &Config) -> serde_json::Value {
    let on_error = |o: OnError| match o {
        OnError::FailClosed => "fail-closed",
        OnError::FailOpen => "fail-open",
    };
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let plugins: serde_json::Map<_, _> = config
        .plugins
        .iter()
        .map(|(name, p)| {
            let mut plugin_config =
                serde_json::from_str(&p.config_json).unwrap_or(serde_json::Value::Null);
            mask_secrets(&mut plugin_config, false);
            let entry = json!({
                "module": p.module.display().to_string(),
                "on_error": on_error(p.on_error),
                "on_state_error": on_error(p.on_state_error),
                "timeout_ms": millis(p.timeout),
                "memory_limit_mb": p.memory_limit / (1024 * 1024),
                "pool_size": p.pool_size,
                "fetch": p.fetch,
                "config": plugin_config,
            });
            (name.clone(), entry)
        })
        .collect();
    let upstreams: serde_json::Map<_, _> = config
        .upstreams
        .iter()
        .map(|(name, u)| {
            let entry = json!({
                "targets": u.targets,
                "connect_timeout_ms": millis(u.connect_timeout),
                "request_timeout_ms": millis(u.request_timeout),
            });
            (name.clone(), entry)
        })
        .collect();
    let routes: Vec<_> = config
        .routes
        .iter()
        .map(|r| {
            let (kind, path) = match &r.path {
                PathMatch::Exact(p) => ("path", p),
                PathMatch::Prefix(p) => ("path_prefix", p),
            };
            let mut route = json!({
                "name": &*r.name,
                "hosts": r.hosts,
                "methods": r.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                "upstream": r.upstream,
                "chain": r.chain,
            });
            route[kind] = json!(path);
            route
        })
        .collect();
    let state = match &config.state {
        StateSettings::Memory => json!({"backend": "memory"}),
        StateSettings::Redis {
            url,
            timeout,
            key_prefix,
        } => json!({
            "backend": "redis",
            "url": mask_url_password(url),
            "timeout_ms": millis(*timeout),
            "key_prefix": key_prefix,
        }),
    };
    let access_log = &config.access_log;
    let (destination, path) = match &access_log.destination {
        crate::config::AccessLogDestination::Stdout => ("stdout", None),
        crate::config::AccessLogDestination::Stderr => ("stderr", None),
        crate::config::AccessLogDestination::File(p) => ("file", Some(p.display().to_string())),
    };
    json!({
        "source": config.source.display().to_string(),
        "gateway": {
            "plugin_dir": config.gateway.plugin_dir.display().to_string(),
            "cache_dir": config.gateway.cache_dir.display().to_string(),
            "watch": config.gateway.watch,
            "trusted_proxies": config.gateway.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "reject_underscore_headers": config.gateway.reject_underscore_headers,
        },
        "listeners": config.listeners.iter().map(|l| json!({"name": l.name, "addr": l.addr.to_string()})).collect::<Vec<_>>(),
        "admin": config.admin.as_ref().map(|a| json!({
            "addr": a.addr.to_string(),
            "token": a.token.as_ref().map(|_| "***"),
        })),
        "limits": {
            "max_header_count": config.limits.max_header_count,
            "max_header_bytes": config.limits.max_header_bytes,
            "max_body_bytes": config.limits.max_body_bytes,
            "max_response_body_bytes": config.limits.max_response_body_bytes,
        },
        "state": state,
        "access_log": {
            "enabled": access_log.enabled,
            "destination": destination,
            "path": path,
        },
        "upstreams": upstreams,
        "plugins": plugins,
        "routes": routes,
    })
}

/// Words that make a config key secret when one of its `_`/`-`/`.`-separated parts is one of
/// them, or when the key contains `secret`, `password`, `token` or `private`.
const SECRET_WORDS: &[&str] = &[
    "key",
    "keys",
    "secret",
    "secrets",
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "hash",
    "hashes",
    "pem",
    "jwk",
    "jwks",
    "credential",
    "credentials",
    "apikey",
    "private",
];

/// Fields shown even inside a secret value: they name who a credential belongs to or where it
/// is carried, not the credential (`keys = [{ hash = "…", consumer = "alice" }]` shows `alice`;
/// `api_key.header` is shown).
const PUBLIC_FIELDS: &[&str] = &[
    "consumer", "roles", "plan", "kid", "username", "issuer", "alg", "kty", "use", "header",
    "query",
];

/// Does a config key name look like it holds a secret?
pub fn looks_secret(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    ["secret", "password", "token", "private"]
        .iter()
        .any(|w| lower.contains(w))
        || lower
            .split(['_', '-', '.'])
            .any(|part| SECRET_WORDS.contains(&part))
}

/// Replace secrets in a plugin's config: every scalar under a secret-looking key (at any depth,
/// except [`PUBLIC_FIELDS`]), and every string holding a PEM block.
pub fn mask_secrets(value: &mut serde_json::Value, secret: bool) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let inner = if secret {
                    !PUBLIC_FIELDS.contains(&k.to_ascii_lowercase().as_str())
                } else {
                    looks_secret(k)
                };
                mask_secrets(v, inner);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_secrets(v, secret)),
        Value::String(s) if secret || s.contains("-----BEGIN") => *value = json!("***"),
        Value::Null => {}
        _ if secret => *value = json!("***"),
        _ => {}
    }
}

/// `redis://user:PASSWORD@host` → `redis://user:***@host`; a URL without a password unchanged.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

/// `GET /admin/usage?consumer=C[&route=R][&from=T][&to=T]`: 200 with the usage, 400 naming the
/// bad parameter, 503 when the state backend fails.
async fn usage(gateway: &Gateway, query: Option<&str>) -> Response<Full<Bytes>> {
    let query = match UsageQuery::parse(query, time::OffsetDateTime::now_utc()) {
        Ok(q) => q,
        Err(e) => return json_response(StatusCode::BAD_REQUEST, &e.to_json()),
    };
    let meters = crate::usage::meter_instances(&*gateway.config().await);
    match crate::usage::usage(&*gateway.state(), &meters, &query).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "state_unavailable", "message": e.to_string()}),
        ),
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_names_kept() {
        let mut config = json!({
            "api_key": {"header": "x-api-key", "keys": [{"hash": "abc", "consumer": "alice", "roles": ["admin"]}]},
            "jwt": {"issuers": [{"issuer": "i", "keys": [{"kid": "k1", "secret": "s3"}, {"pem": "-----BEGIN PUBLIC KEY-----"}]}]},
            "basic": {"users": [{"username": "bob", "password_hash": "$2b$"}]},
            "client_secret": 42,
            "note": "-----BEGIN PRIVATE KEY-----\nMII",
            "limit": 10,
            "tokens": {"alice": "raw-key"},
        });
        mask_secrets(&mut config, false);
        assert_eq!(config["api_key"]["header"], "x-api-key");
        assert_eq!(config["api_key"]["keys"][0]["hash"], "***");
        assert_eq!(config["api_key"]["keys"][0]["consumer"], "alice");
        assert_eq!(config["api_key"]["keys"][0]["roles"][0], "admin");
        assert_eq!(config["jwt"]["issuers"][0]["issuer"], "i");
        assert_eq!(config["jwt"]["issuers"][0]["keys"][0]["kid"], "k1");
        assert_eq!(config["jwt"]["issuers"][0]["keys"][0]["secret"], "***");
        assert_eq!(config["jwt"]["issuers"][0]["keys"][1]["pem"], "***");
        assert_eq!(config["basic"]["users"][0]["username"], "bob");
        assert_eq!(config["basic"]["users"][0]["password_hash"], "***");
        assert_eq!(config["client_secret"], "***");
        assert_eq!(config["note"], "***");
        assert_eq!(config["limit"], 10);
        assert_eq!(config["tokens"]["alice"], "***");
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url_password("redis://user:hunter2@db:6379/0"),
            "redis://user:***@db:6379/0"
        );
        assert_eq!(mask_url_password("redis://:p%40ss@db"), "redis://:***@db");
        assert_eq!(mask_url_password("redis://db:6379"), "redis://db:6379");
        assert_eq!(mask_url_password("not a url"), "not a url");
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"", b"s3cret"));
    }
}
