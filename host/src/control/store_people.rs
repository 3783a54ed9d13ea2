//! Consumers and their API keys (hashes only), management and node tokens (hashes only), the
//! audit log and what gateways report: the rest of the store (see `store.rs`).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::store::{Store, StoreError, now_ms};

/// A consumer: who calls the APIs, with roles and a plan for policy plugins.
#[derive(Debug, Clone, Serialize)]
pub struct Consumer {
    /// The name the auth plugin puts in the `consumer` context value.
    pub name: String,
    /// Roles (the `roles` context value).
    pub roles: Vec<String>,
    /// Plan (the `plan` context value), if any.
    pub plan: Option<String>,
    /// When it was created, Unix milliseconds.
    pub created_ms: i64,
}

/// An API key's record: never the key itself.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// Key id (not secret), names the key in the API.
    pub id: String,
    /// The consumer it identifies.
    pub consumer: String,
    /// SHA-256 hex of the key.
    pub hash: String,
    /// When it was created.
    pub created_ms: i64,
    /// After this instant the key is refused (expiry, or the end of a rotation's grace).
    pub not_after_ms: Option<i64>,
    /// When it was revoked (then it is refused everywhere).
    pub revoked_ms: Option<i64>,
}

/// A management or node token's record: never the token itself.
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    /// Token id.
    pub id: String,
    /// Who holds it (the audit log's actor, a revision's author).
    pub name: String,
    /// `admin`, `operator`, `viewer` or `node`.
    pub role: String,
    /// When it was created.
    pub created_ms: i64,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Order of entries.
    pub id: i64,
    /// When.
    pub at_ms: i64,
    /// The token's name that made the change.
    pub actor: String,
    /// What was done (`revision.create`, `key.revoke`, ...).
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// Details (a revision's message, a key's id...).
    pub detail: String,
}

impl Store {
    /// Create a consumer; `false` when the name is taken.
    pub async fn add_consumer(&self, c: &Consumer) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        if self.consumer(&c.name).await?.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO consumers (name, roles, plan, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&c.name)
        .bind(c.roles.join(","))
        .bind(&c.plan)
        .bind(c.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// One consumer.
    pub async fn consumer(&self, name: &str) -> Result<Option<Consumer>, StoreError> {
        let row =
            sqlx::query("SELECT name, roles, plan, created_ms FROM consumers WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| consumer(&r)).transpose()
    }

    /// Every consumer, by name.
    pub async fn consumers(&self) -> Result<Vec<Consumer>, StoreError> {
        let rows = sqlx::query("SELECT name, roles, plan, created_ms FROM consumers ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(consumer).collect()
    }

    /// Replace a consumer's roles and plan (gateways take them with the key table); `false`
    /// when there is no such consumer.
    pub async fn update_consumer(
        &self,
        name: &str,
        roles: &[String],
        plan: Option<&str>,
    ) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE consumers SET roles = $1, plan = $2 WHERE name = $3")
            .bind(roles.join(","))
            .bind(plan)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Delete a consumer and its keys; `false` when there was none.
    pub async fn delete_consumer(&self, name: &str) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_keys WHERE consumer = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM consumers WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        bump_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Store a key record (its hash) and move the key version on.
    pub async fn add_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, consumer, hash, created_ms, not_after_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.consumer)
        .bind(&key.hash)
        .bind(key.created_ms)
        .bind(key.not_after_ms)
        .bind(key.revoked_ms)
        .execute(&mut *tx)
        .await?;
        bump_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One key record.
    pub async fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(
            "SELECT id, consumer, hash, created_ms, not_after_ms, revoked_ms FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| api_key(&r)).transpose()
    }

    /// Key records: of one consumer, or all of them.
    pub async fn keys(&self, consumer: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let sql = "SELECT id, consumer, hash, created_ms, not_after_ms, revoked_ms FROM api_keys";
        let rows = match consumer {
            Some(c) => {
                sqlx::query(&format!(
                    "{sql} WHERE consumer = $1 ORDER BY created_ms, id"
                ))
                .bind(c)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("{sql} ORDER BY created_ms, id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(api_key).collect()
    }

    /// Set a key's `not_after_ms` (expiry) or `revoked_ms`, and move the key version on.
    pub async fn update_key(
        &self,
        id: &str,
        not_after_ms: Option<i64>,
        revoked_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET not_after_ms = COALESCE($1, not_after_ms), revoked_ms = COALESCE($2, revoked_ms) WHERE id = $3",
        )
        .bind(not_after_ms)
        .bind(revoked_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        bump_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The key version: it moves on with every key or consumer change.
    pub async fn keys_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT value FROM counters WHERE name = 'keys_version'")
                .fetch_one(&self.pool)
                .await?
                .try_get("value")?,
        )
    }

    /// Store a token record (its hash).
    pub async fn add_token(&self, token: &Token, hash: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO tokens (id, name, role, hash, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.role)
        .bind(hash)
        .bind(token.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live token with this hash.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, role, created_ms FROM tokens WHERE hash = $1 AND revoked_ms IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| token(&r)).transpose()
    }

    /// Every live token.
    pub async fn tokens(&self) -> Result<Vec<Token>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_ms FROM tokens WHERE revoked_ms IS NULL ORDER BY created_ms, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token).collect()
    }

    /// Revoke a token; `false` when there was no live one.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let done =
            sqlx::query("UPDATE tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Append to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        let next: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM audit")
            .fetch_one(&self.pool)
            .await?
            .try_get("next")?;
        sqlx::query(
            "INSERT INTO audit (id, at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(next)
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Record a gateway's report (JSON text), replacing its previous one.
    pub async fn report(
        &self,
        node: &str,
        revision: Option<i64>,
        report: &str,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM gateways WHERE node = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO gateways (node, revision, report, reported_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(node)
        .bind(revision)
        .bind(report)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every gateway's last report: (node, report JSON text, when).
    pub async fn gateways(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT node, report, reported_ms FROM gateways ORDER BY node")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("node")?,
                    r.try_get("report")?,
                    r.try_get("reported_ms")?,
                ))
            })
            .collect()
    }
}

/// Move the key version on (inside the caller's transaction).
async fn bump_keys(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'keys_version'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn consumer(r: &AnyRow) -> Result<Consumer, StoreError> {
    let roles: String = r.try_get("roles")?;
    Ok(Consumer {
        name: r.try_get("name")?,
        roles: roles
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        plan: r.try_get("plan")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn api_key(r: &AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: r.try_get("id")?,
        consumer: r.try_get("consumer")?,
        hash: r.try_get("hash")?,
        created_ms: r.try_get("created_ms")?,
        not_after_ms: r.try_get("not_after_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
    })
}

fn token(r: &AnyRow) -> Result<Token, StoreError> {
    Ok(Token {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        created_ms: r.try_get("created_ms")?,
    })
}
