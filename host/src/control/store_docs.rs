//! The store's OpenAPI documents: one per API version (a route of the config, by name), kept as
//! the JSON text they were validated as (see `openapi_doc`).

use serde::Serialize;
use sqlx::Row;

use super::store::{Store, StoreError, now_ms};

/// A stored document's record, without the document.
#[derive(Debug, Clone, Serialize)]
pub struct ApiDoc {
    /// The route (API version) it describes.
    pub route: String,
    /// Its size in bytes.
    pub size: i64,
    /// Who uploaded it.
    pub updated_by: String,
    /// When, Unix milliseconds.
    pub updated_ms: i64,
}

impl Store {
    /// Store (or replace) the document of `route`.
    pub async fn put_api_doc(
        &self,
        route: &str,
        document: &str,
        actor: &str,
    ) -> Result<ApiDoc, StoreError> {
        let _w = self.write.lock().await;
        let doc = ApiDoc {
            route: route.to_owned(),
            size: i64::try_from(document.len()).unwrap_or(i64::MAX),
            updated_by: actor.to_owned(),
            updated_ms: now_ms(),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_docs WHERE route = $1")
            .bind(route)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO api_docs (route, document, size, updated_by, updated_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(route)
        .bind(document)
        .bind(doc.size)
        .bind(&doc.updated_by)
        .bind(doc.updated_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(doc)
    }

    /// The document of `route` (JSON text).
    pub async fn api_doc(&self, route: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT document FROM api_docs WHERE route = $1")
            .bind(route)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("document").map_err(StoreError::from))
            .transpose()
    }

    /// Every stored document's record, by route.
    pub async fn api_docs(&self) -> Result<Vec<ApiDoc>, StoreError> {
        let rows =
            sqlx::query("SELECT route, size, updated_by, updated_ms FROM api_docs ORDER BY route")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiDoc {
                    route: r.try_get("route")?,
                    size: r.try_get("size")?,
                    updated_by: r.try_get("updated_by")?,
                    updated_ms: r.try_get("updated_ms")?,
                })
            })
            .collect()
    }

    /// Delete the document of `route`; `false` when there was none.
    pub async fn delete_api_doc(&self, route: &str) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let done = sqlx::query("DELETE FROM api_docs WHERE route = $1")
            .bind(route)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
