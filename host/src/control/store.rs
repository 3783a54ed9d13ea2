//! The control plane's storage: config revisions and plugin modules here, consumers, keys,
//! tokens, the audit log and gateway reports in `store_people.rs`. One code path over SQLite
//! (`sqlite://FILE`, the default: one file, zero setup) and PostgreSQL (`postgres://...`) through
//! sqlx's `Any` driver, with one set of migrations (`migrations/*.sql`) that runs on both.
//!
//! Writes go through one lock in this process: ids are assigned here (`MAX(id) + 1`), which is
//! what lets the same SQL run on both databases. One control plane process owns a database.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use tokio::sync::Mutex;

/// Schema versions, in order: each runs once, in a transaction, on both databases. Each is
/// checked on its own in `schema_migrations`, so a gap in the numbers (a schema added later
/// with a lower number) is run when it appears.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_portal.sql")),
    (3, include_str!("migrations/0003_usage.sql")),
    (4, include_str!("migrations/0004_openapi.sql")),
    (5, include_str!("migrations/0005_alerts.sql")),
    (6, include_str!("migrations/0006_module_signatures.sql")),
    (7, include_str!("migrations/0007_usage_by_time.sql")),
];

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement, or is unreachable.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The database URL names no supported database.
    #[error("unsupported database URL `{0}` (expected sqlite://FILE or postgres://...)")]
    Url(String),
    /// Stored data that does not decode (a module's base64, say).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// One stored config revision.
#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    /// 1, 2, 3...: the order changes were made in.
    pub id: i64,
    /// Who made it (the management token's name).
    pub author: String,
    /// Why, as given with the change.
    pub message: String,
    /// When, Unix milliseconds.
    pub created_ms: i64,
    /// The revision this one restored, for a rollback.
    pub rollback_of: Option<i64>,
    /// The config text (omitted from listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// The database, its write lock and its flavour.
pub struct Store {
    pub(super) pool: AnyPool,
    pub(super) write: Mutex<()>,
    /// Per-consumer usage sums of past hours and days (`store_usage_totals`).
    pub(super) kept: super::store_usage_totals::KeptTotals,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Connect (creating a SQLite file when absent) and bring the schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let (url, connections) = if let Some(path) = url.strip_prefix("sqlite://") {
            // One connection: SQLite has one writer anyway, and this avoids SQLITE_BUSY.
            (format!("sqlite://{path}?mode=rwc"), 1)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_owned(), 8)
        } else {
            return Err(StoreError::Url(url.to_owned()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await?;
        let store = Store {
            pool,
            write: Mutex::new(()),
            kept: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Run every migration not yet applied, each in its own transaction.
    async fn migrate(&self) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            .execute(&self.pool)
            .await?;
        for (version, sql) in MIGRATIONS {
            let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&self.pool)
                .await?;
            if done.is_some() {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            for statement in statements(sql) {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(*version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "control plane schema migrated");
        }
        Ok(())
    }

    /// Every revision, newest first, without config text.
    pub async fn revisions(&self) -> Result<Vec<Revision>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, author, message, created_ms, rollback_of FROM revisions ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| revision(r, false)).collect()
    }

    /// One revision with its config; `None` when there is no such revision.
    pub async fn revision(&self, id: i64) -> Result<Option<Revision>, StoreError> {
        let row = sqlx::query(
            "SELECT id, author, message, created_ms, rollback_of, config FROM revisions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| revision(&r, true)).transpose()
    }

    /// The newest revision with its config; `None` before the first.
    pub async fn current(&self) -> Result<Option<Revision>, StoreError> {
        let row = sqlx::query(
            "SELECT id, author, message, created_ms, rollback_of, config FROM revisions ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| revision(&r, true)).transpose()
    }

    /// Store a new revision (the next id) and return it.
    pub async fn add_revision(
        &self,
        config: &str,
        author: &str,
        message: &str,
        rollback_of: Option<i64>,
    ) -> Result<Revision, StoreError> {
        let _w = self.write.lock().await;
        let next: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM revisions")
            .fetch_one(&self.pool)
            .await?
            .try_get("next")?;
        let created_ms = now_ms();
        sqlx::query(
            "INSERT INTO revisions (id, config, author, message, created_ms, rollback_of) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(next)
        .bind(config)
        .bind(author)
        .bind(message)
        .bind(created_ms)
        .bind(rollback_of)
        .execute(&self.pool)
        .await?;
        Ok(Revision {
            id: next,
            author: author.to_owned(),
            message: message.to_owned(),
            created_ms,
            rollback_of,
            config: Some(config.to_owned()),
        })
    }

    /// Store a plugin module under its SHA-256 (hex); storing it twice is a no-op.
    pub async fn put_module(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        if self.has_module(sha256).await? {
            return Ok(());
        }
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        sqlx::query(
            "INSERT INTO modules (sha256, data_b64, size, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256)
        .bind(data)
        .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a module with this SHA-256 is stored.
    pub async fn has_module(&self, sha256: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT size FROM modules WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// A stored module's bytes.
    pub async fn module(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT data_b64 FROM modules WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let data: String = row.try_get("data_b64")?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("module {sha256}: {e}")))
    }

    /// Store a module's signature file by `key_id` (replacing that key's earlier one).
    pub async fn put_signature(
        &self,
        sha256: &str,
        key_id: &str,
        signature: &str,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM module_signatures WHERE sha256 = $1 AND key_id = $2")
            .bind(sha256)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO module_signatures (sha256, key_id, signature, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256)
        .bind(key_id)
        .bind(signature)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A module's signature files, oldest first.
    pub async fn signatures(&self, sha256: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT signature FROM module_signatures WHERE sha256 = $1 ORDER BY created_ms, key_id",
        )
        .bind(sha256)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("signature").map_err(StoreError::from))
            .collect()
    }
}

/// A revision from a row; `with_config` when the row has the `config` column.
fn revision(row: &sqlx::any::AnyRow, with_config: bool) -> Result<Revision, StoreError> {
    Ok(Revision {
        id: row.try_get("id")?,
        author: row.try_get("author")?,
        message: row.try_get("message")?,
        created_ms: row.try_get("created_ms")?,
        rollback_of: row.try_get("rollback_of")?,
        config: if with_config {
            Some(row.try_get("config")?)
        } else {
            None
        },
    })
}

/// The statements of a migration file: split at `;`, comment lines dropped.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
