//! The control API's routes: authenticate the caller, check its role, then one handler per
//! route. Revisions, modules, gateways and the node feed are here; consumers, keys and tokens in
//! `api_people.rs`. Every change writes an audit entry.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Control;
use super::http::{Answer, ApiError, bytes, json, parse_json, read_body};
use super::roles::{Caller, Need, Role, hash_hex};

/// Largest config text accepted.
const MAX_CONFIG_BYTES: usize = 1 << 20;
/// Largest plugin module accepted.
const MAX_MODULE_BYTES: usize = 64 << 20;
/// Longest a node's watch waits for a change.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Answer one request.
pub async fn handle(ctl: Arc<Control>, req: Request<Incoming>) -> Answer {
    match route(&ctl, req).await {
        Ok(answer) => answer,
        Err(e) => e.into_response(),
    }
}

async fn route(ctl: &Control, req: Request<Incoming>) -> Result<Answer, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Unauthenticated: liveness and the API's description.
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["v1", "health"]) => {
            return Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"})));
        }
        (&Method::GET, ["v1", "openapi.json"]) => {
            return Ok(bytes(
                "application/json",
                super::OPENAPI.as_bytes().to_vec(),
            ));
        }
        _ => {}
    }
    let caller = authenticate(ctl, &req).await?;
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = req.into_body();
    match (method, segments.as_slice()) {
        (Method::GET, ["v1", "revisions"]) => {
            caller.role.check(Need::Read, "read revisions")?;
            Ok(json(StatusCode::OK, &ctl.store.revisions().await?))
        }
        (Method::POST, ["v1", "revisions"]) => create_revision(ctl, &caller, body).await,
        (Method::GET, ["v1", "revisions", id]) => get_revision(ctl, &caller, id).await,
        (Method::GET, ["v1", "revisions", a, "diff", b]) => diff(ctl, &caller, a, b).await,
        (Method::POST, ["v1", "revisions", id, "rollback"]) => {
            rollback(ctl, &caller, id, body).await
        }
        (Method::PUT, ["v1", "modules", hash]) => put_module(ctl, &caller, hash, body).await,
        (Method::GET, ["v1", "modules", hash]) => {
            caller.role.check(Need::Node, "read modules")?;
            match ctl.store.module(hash).await? {
                Some(b) => Ok(bytes("application/wasm", b)),
                None => Err(ApiError::NotFound(format!("no module {hash}"))),
            }
        }
        (Method::PUT, ["v1", "modules", hash, "signatures"]) => {
            super::api_rollout::put_signature(ctl, &caller, hash, body).await
        }
        (Method::GET, ["v1", "modules", hash, "signatures"]) => {
            super::api_rollout::get_signatures(ctl, &caller, hash).await
        }
        (Method::POST, ["v1", "plugins", name, "promote"]) => {
            let change = super::api_rollout::CanaryChange::Promote;
            super::api_rollout::canary(ctl, &caller, name, change, body).await
        }
        (Method::POST, ["v1", "plugins", name, "rollback"]) => {
            let change = super::api_rollout::CanaryChange::Rollback;
            super::api_rollout::canary(ctl, &caller, name, change, body).await
        }
        (Method::GET, ["v1", "gateways"]) => {
            caller.role.check(Need::Read, "read gateway reports")?;
            gateways(ctl).await
        }
        (Method::GET, ["v1", "audit"]) => {
            caller.role.check(Need::Admin, "read the audit log")?;
            Ok(json(StatusCode::OK, &ctl.store.audit_log(1000).await?))
        }
        (Method::GET, ["v1", "node", "watch"]) => watch(ctl, &caller, &query).await,
        (Method::GET, ["v1", "node", "keys"]) => super::api_people::node_keys(ctl, &caller).await,
        (Method::POST, ["v1", "node", "status"]) => report(ctl, &caller, body).await,
        (Method::GET, ["v1", "apis"]) => super::api_docs::list(ctl, &caller).await,
        (m, ["v1", "apis", name, "openapi"]) => {
            super::api_docs::document(ctl, &caller, m, name, body).await
        }
        (Method::POST, ["v1", "node", "usage"]) => {
            super::api_usage::report(ctl, &caller, body).await
        }
        (Method::GET, ["v1", "usage", "minutes"]) => {
            super::api_usage::minutes(ctl, &caller, &query).await
        }
        (m, ["v1", "alerts", rest @ ..]) => {
            super::alerts::api::route(ctl, &caller, m, rest, &query, body).await
        }
        (m, s) => super::api_people::route(ctl, &caller, m, s, body).await,
    }
}

/// The caller named by `Authorization: Bearer TOKEN`.
async fn authenticate(ctl: &Control, req: &Request<Incoming>) -> Result<Caller, ApiError> {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthenticated)?;
    let record = ctl
        .store
        .token_by_hash(&hash_hex(token))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let role = Role::parse(&record.role)
        .ok_or_else(|| ApiError::Internal(format!("token with unknown role {}", record.role)))?;
    Ok(Caller {
        name: record.name,
        role,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRevision {
    config: String,
    #[serde(default)]
    message: String,
    /// Validate and answer, storing nothing.
    #[serde(default)]
    dry_run: bool,
}

async fn create_revision(
    ctl: &Control,
    caller: &Caller,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "change the config")?;
    let new: NewRevision = parse_json(&read_body(body, MAX_CONFIG_BYTES).await?)?;
    if new.dry_run {
        ctl.validator.check(&ctl.store, &new.config).await?;
        return Ok(json(StatusCode::OK, &serde_json::json!({"valid": true})));
    }
    match super::ops::create_revision(ctl, &caller.name, &new.config, &new.message).await? {
        Some(revision) => Ok(json(StatusCode::CREATED, &revision)),
        None => {
            let id = ctl.store.current().await?.map(|r| r.id);
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"unchanged": true, "id": id}),
            ))
        }
    }
}

/// A revision id from the path: a number, or `current`.
async fn revision_id(ctl: &Control, id: &str) -> Result<i64, ApiError> {
    if id == "current" {
        return ctl
            .store
            .current()
            .await?
            .map(|r| r.id)
            .ok_or_else(|| ApiError::NotFound("no revision yet".into()));
    }
    id.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "revision id must be a number or `current`, not {id:?}"
        ))
    })
}

async fn get_revision(ctl: &Control, caller: &Caller, id: &str) -> Result<Answer, ApiError> {
    // Gateways read the config they serve; people read every revision.
    if caller.role != Role::Node {
        caller.role.check(Need::Read, "read revisions")?;
    }
    let id = revision_id(ctl, id).await?;
    match ctl.store.revision(id).await? {
        Some(mut r) => {
            if caller.role == Role::Viewer {
                r.config = r.config.map(|c| super::mask::mask_config(&c));
            }
            Ok(json(StatusCode::OK, &r))
        }
        None => Err(ApiError::NotFound(format!("no revision {id}"))),
    }
}

async fn diff(ctl: &Control, caller: &Caller, a: &str, b: &str) -> Result<Answer, ApiError> {
    caller.role.check(Need::Read, "read revisions")?;
    let (a, b) = (revision_id(ctl, a).await?, revision_id(ctl, b).await?);
    let text = |r: Option<super::store::Revision>, id| {
        r.and_then(|r| r.config)
            .ok_or_else(|| ApiError::NotFound(format!("no revision {id}")))
    };
    let mut old = text(ctl.store.revision(a).await?, a)?;
    let mut new = text(ctl.store.revision(b).await?, b)?;
    if caller.role == Role::Viewer {
        (old, new) = (
            super::mask::mask_config(&old),
            super::mask::mask_config(&new),
        );
    }
    let diff = super::diff::unified(
        &old,
        &new,
        &format!("revision {a}"),
        &format!("revision {b}"),
    );
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"from": a, "to": b, "diff": diff}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rollback {
    #[serde(default)]
    message: String,
}

async fn rollback(
    ctl: &Control,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "roll back the config")?;
    let id = revision_id(ctl, id).await?;
    let bytes = read_body(body, MAX_CONFIG_BYTES).await?;
    let args: Rollback = if bytes.is_empty() {
        Rollback::default()
    } else {
        parse_json(&bytes)?
    };
    let revision = super::ops::rollback(ctl, &caller.name, id, &args.message).await?;
    Ok(json(StatusCode::CREATED, &revision))
}

async fn put_module(
    ctl: &Control,
    caller: &Caller,
    hash: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "upload modules")?;
    let bytes = read_body(body, MAX_MODULE_BYTES).await?;
    let actual = super::roles::hex(&Sha256::digest(&bytes));
    if actual != hash {
        return Err(ApiError::BadRequest(format!(
            "the body's SHA-256 is {actual}, not {hash}"
        )));
    }
    if !ctl.store.has_module(hash).await? {
        ctl.store.put_module(hash, &bytes).await?;
        ctl.store
            .audit(
                &caller.name,
                "module.upload",
                &format!("module/{hash}"),
                &format!("{} bytes", bytes.len()),
            )
            .await?;
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"sha256": hash, "size": bytes.len()}),
    ))
}

async fn gateways(ctl: &Control) -> Result<Answer, ApiError> {
    let list: Vec<serde_json::Value> = ctl
        .store
        .gateways()
        .await?
        .into_iter()
        .map(|(node, report, at)| {
            let report = serde_json::from_str(&report).unwrap_or(serde_json::Value::Null);
            serde_json::json!({"node": node, "reported_ms": at, "report": report})
        })
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// `GET /v1/node/watch?revision=N&keys=M`: answers at once when the current revision or key
/// version differs from the caller's, else when one changes, else after `wait_ms` (≤ 30 s).
async fn watch(ctl: &Control, caller: &Caller, query: &str) -> Result<Answer, ApiError> {
    caller.role.check(Need::Node, "watch for changes")?;
    let mut seen = (None, None);
    let mut wait = Duration::from_secs(25);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            v.parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("`{k}` must be a number")))
        };
        match k {
            "revision" => seen.0 = Some(number()?),
            "keys" => seen.1 = Some(number()?),
            "wait_ms" => {
                wait = Duration::from_millis(u64::try_from(number()?).unwrap_or(0)).min(MAX_WAIT)
            }
            _ => return Err(ApiError::BadRequest(format!("unknown parameter `{k}`"))),
        }
    }
    let mut rx = ctl.changes.subscribe();
    let differs = |c: &super::Cursor| Some(c.revision) != seen.0 || Some(c.keys) != seen.1;
    let _ = tokio::time::timeout(wait, rx.wait_for(differs)).await;
    let cursor = *rx.borrow();
    Ok(json(StatusCode::OK, &cursor))
}

async fn report(ctl: &Control, caller: &Caller, body: Incoming) -> Result<Answer, ApiError> {
    caller.role.check(Need::Node, "report status")?;
    let value: serde_json::Value = parse_json(&read_body(body, 1 << 20).await?)?;
    let revision = value.get("revision").and_then(serde_json::Value::as_i64);
    let node = match value.get("node").and_then(serde_json::Value::as_str) {
        Some(n) if !n.is_empty() && n.len() <= 200 => n.to_owned(),
        _ => {
            return Err(ApiError::BadRequest(
                "`node` must be a non-empty string".into(),
            ));
        }
    };
    ctl.store
        .report(&node, revision, &value.to_string())
        .await?;
    Ok(json(StatusCode::OK, &serde_json::json!({"ok": true})))
}
