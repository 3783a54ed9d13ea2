//! The control plane's changes that both the JSON API (`api`, `api_people`) and the portal and
//! dashboard pages (`portal`) make: issue and revoke a key, store a revision, roll back, change
//! a consumer's plan. Each writes its audit entry and wakes the gateways; callers check roles
//! first.

use super::Control;
use super::http::ApiError;
use super::roles::{hash_hex, random_secret};
use super::store::{Revision, now_ms};
use super::store_people::ApiKey;

/// Create a key for `consumer`: its record and the key itself (shown once).
pub async fn issue_key(
    ctl: &Control,
    actor: &str,
    consumer: &str,
    not_after_ms: Option<i64>,
    action: &str,
) -> Result<(ApiKey, String), ApiError> {
    let key = random_secret("tgk_", 24)?;
    let record = ApiKey {
        id: random_secret("key_", 8)?,
        consumer: consumer.to_owned(),
        hash: hash_hex(&key),
        created_ms: now_ms(),
        not_after_ms,
        revoked_ms: None,
    };
    ctl.store.add_key(&record).await?;
    ctl.store
        .audit(actor, action, &format!("key/{}", record.id), consumer)
        .await?;
    ctl.changed().await?;
    Ok((record, key))
}

/// Revoke a live key (refused by every gateway at its next key sync).
pub async fn revoke_key(ctl: &Control, actor: &str, key: &ApiKey) -> Result<(), ApiError> {
    ctl.store.update_key(&key.id, None, Some(now_ms())).await?;
    ctl.store
        .audit(
            actor,
            "key.revoke",
            &format!("key/{}", key.id),
            &key.consumer,
        )
        .await?;
    ctl.changed().await?;
    Ok(())
}

/// Rotate a live key: the old one stays valid `grace_s` seconds more, a new one is issued.
pub async fn rotate_key(
    ctl: &Control,
    actor: &str,
    key: &ApiKey,
    grace_s: i64,
) -> Result<(ApiKey, String), ApiError> {
    let now = now_ms();
    let grace_end = now.saturating_add(grace_s.max(0).saturating_mul(1000));
    let end = key.not_after_ms.map_or(grace_end, |t| t.min(grace_end));
    ctl.store.update_key(&key.id, Some(end), None).await?;
    issue_key(ctl, actor, &key.consumer, None, "key.rotate").await
}

/// Validate `config` and store it as the newest revision. `Ok(None)` when it is the current
/// config already (nothing stored).
pub async fn create_revision(
    ctl: &Control,
    actor: &str,
    config: &str,
    message: &str,
) -> Result<Option<Revision>, ApiError> {
    ctl.validator.check(&ctl.store, config).await?;
    let current = ctl.store.current().await?;
    if current.as_ref().and_then(|r| r.config.as_deref()) == Some(config) {
        return Ok(None);
    }
    let revision = ctl.store.add_revision(config, actor, message, None).await?;
    ctl.store
        .audit(
            actor,
            "revision.create",
            &format!("revision/{}", revision.id),
            message,
        )
        .await?;
    ctl.changed().await?;
    Ok(Some(revision))
}

/// Store revision `id`'s config again as the newest revision (checked again first: modules
/// or plugin behaviour may have changed since).
pub async fn rollback(
    ctl: &Control,
    actor: &str,
    id: i64,
    message: &str,
) -> Result<Revision, ApiError> {
    let old = ctl
        .store
        .revision(id)
        .await?
        .and_then(|r| r.config)
        .ok_or_else(|| ApiError::NotFound(format!("no revision {id}")))?;
    ctl.validator.check(&ctl.store, &old).await?;
    let message = if message.is_empty() {
        format!("rollback to revision {id}")
    } else {
        message.to_owned()
    };
    let revision = ctl
        .store
        .add_revision(&old, actor, &message, Some(id))
        .await?;
    ctl.store
        .audit(
            actor,
            "revision.rollback",
            &format!("revision/{}", revision.id),
            &message,
        )
        .await?;
    ctl.changed().await?;
    Ok(revision)
}

/// Names and roles: 1–128 of `A-Z a-z 0-9 . _ - @ :`.
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{what} {name:?}: 1 to 128 characters of A-Z a-z 0-9 . _ - @ :"
        )))
    }
}

/// Put `consumer` on `plan` (its roles unchanged); gateways take it with the key table.
pub async fn set_plan(
    ctl: &Control,
    actor: &str,
    consumer: &str,
    plan: &str,
) -> Result<(), ApiError> {
    let current = ctl
        .store
        .consumer(consumer)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no consumer {consumer:?}")))?;
    if !ctl
        .store
        .update_consumer(consumer, &current.roles, Some(plan))
        .await?
    {
        return Err(ApiError::NotFound(format!("no consumer {consumer:?}")));
    }
    let detail = format!(
        "plan={plan} (was {})",
        current.plan.as_deref().unwrap_or("none")
    );
    ctl.store
        .audit(
            actor,
            "consumer.plan",
            &format!("consumer/{consumer}"),
            &detail,
        )
        .await?;
    ctl.changed().await?;
    Ok(())
}
