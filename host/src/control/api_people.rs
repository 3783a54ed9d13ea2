//! Consumers, their API keys and the tokens of the control API itself. Keys are random, shown
//! once when created and stored as SHA-256 hashes; rotating a key issues a new one and keeps the
//! old one valid for a grace period. Gateways read the live key table at `GET /v1/node/keys`.

use http::{Method, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::Control;
use super::http::{Answer, ApiError, json, parse_json, read_body};
use super::ops::check_name;
use super::roles::{Caller, Need, Role, hash_hex, random_secret};
use super::store::now_ms;
use super::store_people::{ApiKey, Consumer, Token};

/// Consumers, keys and tokens; anything else is 404 (or 405 for a known path).
pub async fn route(
    ctl: &Control,
    caller: &Caller,
    method: Method,
    segments: &[&str],
    body: Incoming,
) -> Result<Answer, ApiError> {
    match (method, segments) {
        (Method::GET, ["v1", "consumers"]) => list_consumers(ctl, caller).await,
        (Method::POST, ["v1", "consumers"]) => create_consumer(ctl, caller, body).await,
        (Method::GET, ["v1", "consumers", name]) => get_consumer(ctl, caller, name).await,
        (Method::DELETE, ["v1", "consumers", name]) => delete_consumer(ctl, caller, name).await,
        (Method::PUT, ["v1", "consumers", name]) => update_consumer(ctl, caller, name, body).await,
        (Method::POST, ["v1", "consumers", name, "keys"]) => {
            caller.role.check(Need::Write, "create keys")?;
            let args: KeyArgs = optional_json(body).await?;
            if ctl.store.consumer(name).await?.is_none() {
                return Err(ApiError::NotFound(format!("no consumer {name:?}")));
            }
            let not_after = args.expires_in_s.map(|s| now_ms() + s.saturating_mul(1000));
            issue_key(ctl, caller, name, not_after, "key.create").await
        }
        (Method::POST, ["v1", "keys", id, action]) => {
            key_action(ctl, caller, id, action, body).await
        }
        (Method::POST, ["v1", "invites"]) => {
            caller.role.check(Need::Write, "invite developers")?;
            let code = random_secret("tgi_", 16)?;
            ctl.store.add_invite(&hash_hex(&code), &caller.name).await?;
            ctl.store
                .audit(&caller.name, "invite.create", "invite", "")
                .await?;
            Ok(json(
                StatusCode::CREATED,
                &serde_json::json!({"code": code}),
            ))
        }
        (Method::GET, ["v1", "tokens"]) => {
            caller.role.check(Need::Admin, "read tokens")?;
            Ok(json(StatusCode::OK, &ctl.store.tokens().await?))
        }
        (Method::POST, ["v1", "tokens"]) => create_token(ctl, caller, body).await,
        (Method::DELETE, ["v1", "tokens", id]) => {
            caller.role.check(Need::Admin, "revoke tokens")?;
            if !ctl.store.revoke_token(id).await? {
                return Err(ApiError::NotFound(format!("no live token {id}")));
            }
            ctl.store
                .audit(&caller.name, "token.revoke", &format!("token/{id}"), "")
                .await?;
            Ok(json(StatusCode::OK, &serde_json::json!({"revoked": id})))
        }
        (_, s) if known(s) => Err(ApiError::Method),
        (_, _) => Err(ApiError::NotFound(
            "no such route (see GET /v1/openapi.json)".into(),
        )),
    }
}

/// Paths that exist with another method.
fn known(s: &[&str]) -> bool {
    matches!(
        s,
        ["v1", "revisions"]
            | ["v1", "revisions", _]
            | ["v1", "revisions", _, "diff", _]
            | ["v1", "revisions", _, "rollback"]
            | ["v1", "modules", _]
            | ["v1", "gateways"]
            | ["v1", "audit"]
            | ["v1", "node", _]
            | ["v1", "consumers"]
            | ["v1", "consumers", _]
            | ["v1", "consumers", _, "keys"]
            | ["v1", "keys", _, _]
            | ["v1", "tokens"]
            | ["v1", "tokens", _]
            | ["v1", "invites"]
    )
}

/// A JSON body that may be empty (then `T::default()`).
async fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: Incoming,
) -> Result<T, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(&bytes)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConsumer {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    plan: Option<String>,
}

async fn create_consumer(
    ctl: &Control,
    caller: &Caller,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "create consumers")?;
    let new: NewConsumer = parse_json(&read_body(body, 64 << 10).await?)?;
    check_name("consumer", &new.name)?;
    for role in &new.roles {
        check_name("role", role)?;
    }
    if let Some(plan) = &new.plan {
        check_name("plan", plan)?;
    }
    let consumer = Consumer {
        name: new.name,
        roles: new.roles,
        plan: new.plan,
        created_ms: now_ms(),
    };
    if !ctl.store.add_consumer(&consumer).await? {
        return Err(ApiError::Conflict(format!(
            "consumer {:?} exists",
            consumer.name
        )));
    }
    ctl.store
        .audit(
            &caller.name,
            "consumer.create",
            &format!("consumer/{}", consumer.name),
            "",
        )
        .await?;
    Ok(json(StatusCode::CREATED, &consumer))
}

/// A consumer with its keys; key hashes only for roles that manage keys.
fn with_keys(caller: &Caller, c: &Consumer, keys: &[ApiKey]) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .filter(|k| k.consumer == c.name)
        .map(|k| {
            let mut v = serde_json::json!(k);
            if !matches!(caller.role, Role::Admin | Role::Operator)
                && let Some(o) = v.as_object_mut()
            {
                o.remove("hash");
            }
            v
        })
        .collect();
    serde_json::json!({"name": c.name, "roles": c.roles, "plan": c.plan, "created_ms": c.created_ms, "keys": keys})
}

async fn list_consumers(ctl: &Control, caller: &Caller) -> Result<Answer, ApiError> {
    caller.role.check(Need::Read, "read consumers")?;
    let keys = ctl.store.keys(None).await?;
    let list: Vec<_> = ctl
        .store
        .consumers()
        .await?
        .iter()
        .map(|c| with_keys(caller, c, &keys))
        .collect();
    Ok(json(StatusCode::OK, &list))
}

async fn get_consumer(ctl: &Control, caller: &Caller, name: &str) -> Result<Answer, ApiError> {
    caller.role.check(Need::Read, "read consumers")?;
    let consumer = ctl
        .store
        .consumer(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no consumer {name:?}")))?;
    let keys = ctl.store.keys(Some(name)).await?;
    Ok(json(StatusCode::OK, &with_keys(caller, &consumer, &keys)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerUpdate {
    #[serde(default)]
    roles: Vec<String>,
    plan: Option<String>,
}

async fn update_consumer(
    ctl: &Control,
    caller: &Caller,
    name: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "change consumers")?;
    let update: ConsumerUpdate = parse_json(&read_body(body, 64 << 10).await?)?;
    for role in &update.roles {
        check_name("role", role)?;
    }
    if let Some(plan) = &update.plan {
        check_name("plan", plan)?;
    }
    if !ctl
        .store
        .update_consumer(name, &update.roles, update.plan.as_deref())
        .await?
    {
        return Err(ApiError::NotFound(format!("no consumer {name:?}")));
    }
    let detail = format!(
        "roles={} plan={}",
        update.roles.join(","),
        update.plan.as_deref().unwrap_or("")
    );
    ctl.store
        .audit(
            &caller.name,
            "consumer.update",
            &format!("consumer/{name}"),
            &detail,
        )
        .await?;
    ctl.changed().await?;
    get_consumer(ctl, caller, name).await
}

async fn delete_consumer(ctl: &Control, caller: &Caller, name: &str) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "delete consumers")?;
    if !ctl.store.delete_consumer(name).await? {
        return Err(ApiError::NotFound(format!("no consumer {name:?}")));
    }
    ctl.store
        .audit(
            &caller.name,
            "consumer.delete",
            &format!("consumer/{name}"),
            "",
        )
        .await?;
    ctl.changed().await?;
    Ok(json(StatusCode::OK, &serde_json::json!({"deleted": name})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KeyArgs {
    /// `create`: the key expires this many seconds from now.
    expires_in_s: Option<i64>,
    /// `rotate`: the old key stays valid this many seconds (default 3600).
    grace_s: Option<i64>,
    /// `expire`: the key is refused from this instant (Unix ms; default now).
    at_ms: Option<i64>,
}

/// Create a key for `consumer`: the answer holds the key, the only time it is shown.
async fn issue_key(
    ctl: &Control,
    caller: &Caller,
    consumer: &str,
    not_after_ms: Option<i64>,
    action: &str,
) -> Result<Answer, ApiError> {
    let (record, key) =
        super::ops::issue_key(ctl, &caller.name, consumer, not_after_ms, action).await?;
    let mut answer = serde_json::json!(record);
    answer["key"] = serde_json::json!(key);
    Ok(json(StatusCode::CREATED, &answer))
}

/// `POST /v1/keys/{id}/rotate|revoke|expire`.
async fn key_action(
    ctl: &Control,
    caller: &Caller,
    id: &str,
    action: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "change keys")?;
    let args: KeyArgs = optional_json(body).await?;
    let key = ctl
        .store
        .key(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no key {id}")))?;
    if key.revoked_ms.is_some() {
        return Err(ApiError::Conflict(format!("key {id} is revoked")));
    }
    let now = now_ms();
    match action {
        "rotate" => {
            let (record, key) =
                super::ops::rotate_key(ctl, &caller.name, &key, args.grace_s.unwrap_or(3600))
                    .await?;
            let mut answer = serde_json::json!(record);
            answer["key"] = serde_json::json!(key);
            Ok(json(StatusCode::CREATED, &answer))
        }
        "revoke" => {
            super::ops::revoke_key(ctl, &caller.name, &key).await?;
            Ok(json(StatusCode::OK, &serde_json::json!({"revoked": id})))
        }
        "expire" => {
            let at = args.at_ms.unwrap_or(now);
            ctl.store.update_key(id, Some(at), None).await?;
            ctl.store
                .audit(
                    &caller.name,
                    "key.expire",
                    &format!("key/{id}"),
                    &at.to_string(),
                )
                .await?;
            ctl.changed().await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"id": id, "not_after_ms": at}),
            ))
        }
        other => Err(ApiError::NotFound(format!(
            "no key action {other:?} (rotate, revoke, expire)"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
}

async fn create_token(ctl: &Control, caller: &Caller, body: Incoming) -> Result<Answer, ApiError> {
    caller.role.check(Need::Admin, "create tokens")?;
    let new: NewToken = parse_json(&read_body(body, 64 << 10).await?)?;
    check_name("token name", &new.name)?;
    let role = Role::parse(&new.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "role {:?}: expected admin, operator, viewer or node",
            new.role
        ))
    })?;
    let secret = random_secret("tgt_", 24)?;
    let token = Token {
        id: random_secret("tok_", 8)?,
        name: new.name,
        role: role.name().to_owned(),
        created_ms: now_ms(),
    };
    ctl.store.add_token(&token, &hash_hex(&secret)).await?;
    ctl.store
        .audit(
            &caller.name,
            "token.create",
            &format!("token/{}", token.id),
            role.name(),
        )
        .await?;
    let mut answer = serde_json::json!(token);
    answer["token"] = serde_json::json!(secret);
    Ok(json(StatusCode::CREATED, &answer))
}

/// `GET /v1/node/keys`: the keys gateways accept now (not revoked, not past `not_after_ms`),
/// with the identity each stands for, and the key version they reflect.
pub async fn node_keys(ctl: &Control, caller: &Caller) -> Result<Answer, ApiError> {
    caller.role.check(Need::Node, "read the key table")?;
    let version = ctl.store.keys_version().await?;
    let consumers = ctl.store.consumers().await?;
    let now = now_ms();
    let keys: Vec<serde_json::Value> = ctl
        .store
        .keys(None)
        .await?
        .into_iter()
        .filter(|k| k.revoked_ms.is_none() && k.not_after_ms.is_none_or(|t| t > now))
        .filter_map(|k| {
            let c = consumers.iter().find(|c| c.name == k.consumer)?;
            Some(
                serde_json::json!({"hash": k.hash, "consumer": c.name, "roles": c.roles,
                "plan": c.plan, "not_after_ms": k.not_after_ms}),
            )
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"version": version, "keys": keys}),
    ))
}
