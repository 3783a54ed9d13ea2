//! The admin API, on its own listener (loopback by default): health, readiness, the active
//! config with secrets masked, reload, per-plugin statistics, per-consumer usage (from the meter
//! plugins' counters, see [`crate::usage`]) and Prometheus metrics. Endpoints are listed in
//! `docs/operations.md`.
//!
//! With `[admin] token_env` or `token_file` every request needs `Authorization: Bearer TOKEN`
//! (compared in constant time); without one it gets 401 and `WWW-Authenticate`. Off loopback a
//! token is mandatory (the config refuses to load otherwise). Without a token, only requests
//! addressed to the admin address or a loopback name are served, and POSTs a web page could
//! send are refused ([`guard`]). The listener has the proxy's connection cap and clocks
//! ([`listener`]).

mod guard;
mod listener;
mod masking;

pub use listener::serve;
pub use masking::{config_json, looks_secret, mask_secrets, mask_url_password};

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use crate::config::AdminToken;
use crate::gateway::{CanaryAction, CanaryActionError, Gateway};
use crate::usage::UsageQuery;

/// Install the process-wide metrics recorder (see [`crate::telemetry::install_metrics_recorder`]).
pub fn install_metrics_recorder() {
    crate::telemetry::install_metrics_recorder();
}

async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
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
        (&Method::POST, path) if path.starts_with("/admin/plugins/") => match canary_path(path) {
            Some((name, action)) => canary(&gateway, name, action).await,
            None => json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": "not_found", "message": format!("no admin endpoint at {path}")}),
            ),
        },
        (&Method::GET, "/admin/upstreams") => json_response(
            StatusCode::OK,
            &crate::proxy::upstream::health::report(gateway.proxy().table().upstream_pools()),
        ),
        (&Method::GET, "/metrics") => match crate::telemetry::render_metrics() {
            Some(text) => Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(text)))
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
    }
}

/// Check `Authorization: Bearer TOKEN`: `None` when it is right, else the 401 (with
/// `WWW-Authenticate`) to send.
fn refuse_unauthorized<B>(token: &AdminToken, req: &Request<B>) -> Option<Response<Full<Bytes>>> {
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
    let canaries = gateway.canaries().await;
    let plugins: Vec<_> = gateway
        .plugins_with_provenance()
        .await
        .iter()
        .map(|(p, provenance)| {
            let version = p.spec().version;
            let canary = canaries.get(&**p.name()).map(|state| {
                let reason = state.reason();
                let [stable_window, canary_window] = state.window();
                json!({
                    "status": state.status().as_str(),
                    "reason": reason.as_ref().map(|r| r.0.clone()),
                    "changed_at_unix_ms": reason.as_ref().map(|r| r.1),
                    "window": {
                        "stable": {"calls": stable_window.0, "failure_percent": stable_window.1},
                        "canary": {"calls": canary_window.0, "failure_percent": canary_window.1},
                    },
                })
            });
            let s = p.stats();
            let caps = p.capabilities();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            let mean = match s.calls {
                0 => 0.0,
                n => ms(s.total_call_time) / n as f64,
            };
            json!({
                "name": &**p.name(),
                "version": version.as_str(),
                "canary": canary,
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
                "provenance": provenance,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "plugins": plugins }))
}

/// `/admin/plugins/NAME/promote` or `/rollback`: the entry's name and the action.
fn canary_path(path: &str) -> Option<(&str, CanaryAction)> {
    let rest = path.strip_prefix("/admin/plugins/")?;
    let (name, action) = rest.rsplit_once('/')?;
    let action = match action {
        "promote" => CanaryAction::Promote,
        "rollback" => CanaryAction::Rollback,
        _ => return None,
    };
    (!name.is_empty() && !name.contains('/')).then_some((name, action))
}

/// `POST /admin/plugins/NAME/promote|rollback`: 200 with the canary's new status, 404 when the
/// entry has no canary, 409 when the canary is not in a state the action applies to.
async fn canary(gateway: &Gateway, name: &str, action: CanaryAction) -> Response<Full<Bytes>> {
    match gateway.canary_action(name, action).await {
        Ok(status) => json_response(
            StatusCode::OK,
            &json!({"plugin": name, "canary": status.as_str()}),
        ),
        Err(e @ CanaryActionError::NoCanary(_)) => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "no_canary", "message": e.to_string()}),
        ),
        Err(e @ CanaryActionError::Conflict { .. }) => json_response(
            StatusCode::CONFLICT,
            &json!({"error": "canary_conflict", "message": e.to_string()}),
        ),
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
    fn token_comparison() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"", b"s3cret"));
    }
}
