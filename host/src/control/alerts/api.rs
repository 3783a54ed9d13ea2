//! `/v1/alerts`: the alerts (viewers and up) and the webhooks they are sent to (admins only; a
//! webhook's secret is given once, when it is added, and never returned).

use http::{Method, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::store::Webhook;
use crate::control::Control;
use crate::control::http::{Answer, ApiError, json, parse_json, read_body};
use crate::control::roles::{Caller, Need, random_secret};
use crate::control::store::now_ms;

/// Most alerts one listing returns.
const MAX_LIMIT: i64 = 1000;

/// `rest`: the path after `/v1/alerts`.
pub async fn route(
    ctl: &Control,
    caller: &Caller,
    method: Method,
    rest: &[&str],
    query: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    match (method, rest) {
        (Method::GET, []) => {
            caller.role.check(Need::Read, "read alerts")?;
            let alerts = ctl.store.alerts(limit(query)?).await?;
            Ok(json(StatusCode::OK, &alerts))
        }
        (Method::GET, ["webhooks"]) => {
            caller.role.check(Need::Admin, "read alert webhooks")?;
            let hooks: Vec<serde_json::Value> = ctl
                .store
                .webhooks()
                .await?
                .into_iter()
                .map(|h| serde_json::json!({"id": h.id, "url": h.url, "secret": "********", "created_ms": h.created_ms}))
                .collect();
            Ok(json(StatusCode::OK, &hooks))
        }
        (Method::POST, ["webhooks"]) => add_webhook(ctl, caller, body).await,
        (Method::DELETE, ["webhooks", id]) => {
            caller.role.check(Need::Admin, "delete alert webhooks")?;
            if !ctl.store.delete_webhook(id).await? {
                return Err(ApiError::NotFound(format!("no webhook {id:?}")));
            }
            ctl.store
                .audit(&caller.name, "webhook.delete", &format!("webhook/{id}"), "")
                .await?;
            Ok(json(StatusCode::OK, &serde_json::json!({"deleted": id})))
        }
        (_, [] | ["webhooks"] | ["webhooks", _]) => Err(ApiError::Method),
        _ => Err(ApiError::NotFound("no such route".into())),
    }
}

/// `limit=N` (1..=1000, default 100).
fn limit(query: &str) -> Result<i64, ApiError> {
    let mut limit = 100;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("limit", v)) => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("`limit` must be 1 to {MAX_LIMIT}"))
                    })?;
            }
            _ => return Err(ApiError::BadRequest(format!("unknown parameter {pair:?}"))),
        }
    }
    Ok(limit)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    secret: String,
}

async fn add_webhook(ctl: &Control, caller: &Caller, body: Incoming) -> Result<Answer, ApiError> {
    caller.role.check(Need::Admin, "add alert webhooks")?;
    let new: NewWebhook = parse_json(&read_body(body, 16 * 1024).await?)?;
    check_url(&new.url)?;
    if new.secret.len() < 16 || new.secret.len() > 512 {
        return Err(ApiError::BadRequest(
            "`secret` must be 16 to 512 characters".into(),
        ));
    }
    let hook = Webhook {
        id: random_secret("wh_", 8)?,
        url: new.url,
        created_ms: now_ms(),
    };
    ctl.store.add_webhook(&hook, &new.secret).await?;
    ctl.store
        .audit(
            &caller.name,
            "webhook.create",
            &format!("webhook/{}", hook.id),
            &hook.url,
        )
        .await?;
    Ok(json(StatusCode::CREATED, &hook))
}

/// An absolute `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("`url` {url:?}: {why}"));
    let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) || url.len() > 2048 {
        return Err(bad("needs a host (and at most 2048 characters)"));
    }
    Ok(())
}
