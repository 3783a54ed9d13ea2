//! The developer portal's part of the store: developer accounts (each owns the consumer of the
//! same name, created with it) and sign-up invitations (code hashes, used once).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::store::{Store, StoreError};
use super::store_people::Consumer;

/// A developer account: never the password, only its Argon2id hash.
#[derive(Debug, Clone)]
pub struct Developer {
    /// Account id.
    pub id: String,
    /// Sign-in name, also the name of the consumer the account owns.
    pub username: String,
    /// Free text shown on pages (escaped like every user-provided string).
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When it was created, Unix milliseconds.
    pub created_ms: i64,
}

/// Why a sign-up could not be stored.
#[derive(Debug, PartialEq, Eq)]
pub enum SignUpRefused {
    /// An account or a consumer has that name.
    NameTaken,
    /// The invitation is unknown or used.
    BadInvite,
}

impl Store {
    /// Create the account and its consumer in one transaction, using `invite_hash` up when
    /// given. `Ok(Err(..))` says why nothing was stored.
    pub async fn add_developer(
        &self,
        dev: &Developer,
        consumer: &Consumer,
        invite_hash: Option<&str>,
    ) -> Result<Result<(), SignUpRefused>, StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        if let Some(hash) = invite_hash {
            let used = sqlx::query(
                "UPDATE invites SET used_by = $1 WHERE code_hash = $2 AND used_by IS NULL",
            )
            .bind(&dev.username)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
            if used.rows_affected() != 1 {
                return Ok(Err(SignUpRefused::BadInvite));
            }
        }
        let taken = sqlx::query(
            "SELECT name FROM consumers WHERE name = $1 UNION SELECT username FROM developers WHERE username = $1",
        )
        .bind(&dev.username)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Ok(Err(SignUpRefused::NameTaken));
        }
        sqlx::query(
            "INSERT INTO consumers (name, roles, plan, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&consumer.name)
        .bind(consumer.roles.join(","))
        .bind(&consumer.plan)
        .bind(consumer.created_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO developers (id, username, display_name, password_hash, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&dev.id)
        .bind(&dev.username)
        .bind(&dev.display_name)
        .bind(&dev.password_hash)
        .bind(dev.created_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The account with this sign-in name.
    pub async fn developer(&self, username: &str) -> Result<Option<Developer>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, display_name, password_hash, created_ms FROM developers WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| developer(&r)).transpose()
    }

    /// Store an invitation's code hash.
    pub async fn add_invite(&self, code_hash: &str, created_by: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        sqlx::query("INSERT INTO invites (code_hash, created_by, created_ms) VALUES ($1, $2, $3)")
            .bind(code_hash)
            .bind(created_by)
            .bind(super::store::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn developer(r: &AnyRow) -> Result<Developer, StoreError> {
    Ok(Developer {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        password_hash: r.try_get("password_hash")?,
        created_ms: r.try_get("created_ms")?,
    })
}
