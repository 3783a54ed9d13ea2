//! The alerts' part of the store: alerts as detected, the webhooks they go to, and one delivery
//! row per (alert, webhook) carrying its retry state, so a restart resumes pending deliveries.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::detector::{Metric, Series, Spike};
use crate::control::store::{Store, StoreError, now_ms};

/// A stored alert with its deliveries.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// 1, 2, 3...
    pub id: i64,
    /// The route, and the consumer when the series is one consumer's.
    pub series: Series,
    /// `request_rate` or `error_rate`.
    pub metric: Metric,
    /// The spiking value.
    pub value: f64,
    /// The baseline mean it was compared with.
    pub baseline: f64,
    /// Its z-score.
    pub z: f64,
    /// The minute that spiked, Unix ms.
    pub minute_ms: i64,
    /// When it was detected, Unix ms.
    pub detected_ms: i64,
    /// One per webhook configured when it was detected.
    pub deliveries: Vec<Delivery>,
}

/// A webhook as configured; the secret is never read back out of the store by the API.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    /// `wh_...`.
    pub id: String,
    /// Where alerts are POSTed.
    pub url: String,
    /// When it was added, Unix ms.
    pub created_ms: i64,
}

/// One alert's delivery to one webhook.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The alert.
    #[serde(skip)]
    pub alert_id: i64,
    /// The webhook.
    pub webhook_id: String,
    /// Its URL when the alert was detected.
    pub url: String,
    /// `pending`, `delivered` or `failed` (attempts used up).
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last failure ("" when none).
    pub last_error: String,
    /// When the state last changed, Unix ms.
    pub updated_ms: i64,
}

impl Store {
    /// Store new alerts (with a pending delivery to every webhook); the stored alerts.
    pub async fn add_alerts(&self, spikes: &[Spike]) -> Result<Vec<Alert>, StoreError> {
        let _w = self.write.lock().await;
        let webhooks = self.webhook_secrets().await?;
        let mut tx = self.pool.begin().await?;
        let mut next: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM alerts")
            .fetch_one(&mut *tx)
            .await?
            .try_get("next")?;
        let now = now_ms();
        let mut stored = Vec::new();
        for spike in spikes {
            sqlx::query(
                "INSERT INTO alerts (id, route, consumer, metric, value, baseline, z, minute_ms, detected_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(next)
            .bind(&spike.series.route)
            .bind(spike.series.consumer.as_deref().unwrap_or(""))
            .bind(spike.metric.name())
            .bind(spike.value.to_string())
            .bind(spike.baseline.to_string())
            .bind(spike.z.to_string())
            .bind(spike.minute_ms)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let mut deliveries = Vec::new();
            for (hook, _) in &webhooks {
                sqlx::query(
                    "INSERT INTO alert_deliveries (alert_id, webhook_id, url, state, attempts, next_ms, last_error, updated_ms) VALUES ($1, $2, $3, 'pending', 0, $4, '', $4)",
                )
                .bind(next)
                .bind(&hook.id)
                .bind(&hook.url)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                deliveries.push(Delivery {
                    alert_id: next,
                    webhook_id: hook.id.clone(),
                    url: hook.url.clone(),
                    state: "pending".into(),
                    attempts: 0,
                    last_error: String::new(),
                    updated_ms: now,
                });
            }
            stored.push(Alert {
                id: next,
                series: spike.series.clone(),
                metric: spike.metric,
                value: spike.value,
                baseline: spike.baseline,
                z: spike.z,
                minute_ms: spike.minute_ms,
                detected_ms: now,
                deliveries,
            });
            next += 1;
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// The newest `limit` alerts (newest first) with their deliveries.
    pub async fn alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, route, consumer, metric, value, baseline, z, minute_ms, detected_ms FROM alerts ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut alerts = rows.iter().map(alert).collect::<Result<Vec<_>, _>>()?;
        let oldest = alerts.last().map_or(i64::MAX, |a| a.id);
        let deliveries = sqlx::query(
            "SELECT alert_id, webhook_id, url, state, attempts, last_error, updated_ms FROM alert_deliveries WHERE alert_id >= $1 ORDER BY webhook_id",
        )
        .bind(oldest)
        .fetch_all(&self.pool)
        .await?;
        for row in &deliveries {
            let d = delivery(row)?;
            if let Some(a) = alerts.iter_mut().find(|a| a.id == d.alert_id) {
                a.deliveries.push(d);
            }
        }
        Ok(alerts)
    }

    /// (series, metric, detected) of alerts detected since `since_ms`: the open episodes.
    pub async fn recent_alert_series(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(Series, Metric, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, route, consumer, metric, value, baseline, z, minute_ms, detected_ms FROM alerts WHERE detected_ms >= $1")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| alert(r).map(|a| (a.series, a.metric, a.detected_ms)))
            .collect()
    }

    /// Deliveries due now: (delivery, the alert's JSON fields, the webhook's secret). A delivery
    /// whose webhook was deleted since is marked failed.
    pub async fn due_deliveries(&self) -> Result<Vec<(Delivery, Alert, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.alert_id, d.webhook_id, d.url, d.state, d.attempts, d.last_error, d.updated_ms, w.secret, \
             a.id, a.route, a.consumer, a.metric, a.value, a.baseline, a.z, a.minute_ms, a.detected_ms \
             FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id LEFT JOIN alert_webhooks w ON w.id = d.webhook_id \
             WHERE d.state = 'pending' AND d.next_ms <= $1 ORDER BY d.alert_id LIMIT 100",
        )
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::new();
        for row in &rows {
            let d = delivery(row)?;
            match row.try_get::<Option<String>, _>("secret")? {
                Some(secret) => due.push((d, alert(row)?, secret)),
                None => {
                    self.delivery_outcome(&d, "failed", "the webhook was deleted", 0)
                        .await?
                }
            }
        }
        Ok(due)
    }

    /// Record an attempt: the new state, the error ("" on success), when to try next.
    pub async fn delivery_outcome(
        &self,
        d: &Delivery,
        state: &str,
        error: &str,
        next_ms: i64,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        sqlx::query(
            "UPDATE alert_deliveries SET state = $1, attempts = $2, last_error = $3, next_ms = $4, updated_ms = $5 WHERE alert_id = $6 AND webhook_id = $7",
        )
        .bind(state)
        .bind(d.attempts)
        .bind(error)
        .bind(next_ms)
        .bind(now_ms())
        .bind(d.alert_id)
        .bind(&d.webhook_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Add a webhook.
    pub async fn add_webhook(&self, hook: &Webhook, secret: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO alert_webhooks (id, url, secret, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&hook.id)
        .bind(&hook.url)
        .bind(secret)
        .bind(hook.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every webhook, oldest first, without secrets.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        Ok(self
            .webhook_secrets()
            .await?
            .into_iter()
            .map(|(h, _)| h)
            .collect())
    }

    async fn webhook_secrets(&self) -> Result<Vec<(Webhook, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, secret, created_ms FROM alert_webhooks ORDER BY created_ms, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let hook = Webhook {
                    id: r.try_get("id")?,
                    url: r.try_get("url")?,
                    created_ms: r.try_get("created_ms")?,
                };
                Ok((hook, r.try_get("secret")?))
            })
            .collect()
    }

    /// Delete a webhook; whether it existed. Its pending deliveries then fail.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let _w = self.write.lock().await;
        let done = sqlx::query("DELETE FROM alert_webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn number(row: &AnyRow, column: &str) -> Result<f64, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("alert {column} {text:?} is not a number")))
}

fn alert(row: &AnyRow) -> Result<Alert, StoreError> {
    let consumer: String = row.try_get("consumer")?;
    let metric: String = row.try_get("metric")?;
    Ok(Alert {
        id: row.try_get("id")?,
        series: Series {
            route: row.try_get("route")?,
            consumer: (!consumer.is_empty()).then_some(consumer),
        },
        metric: Metric::parse(&metric)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown alert metric {metric:?}")))?,
        value: number(row, "value")?,
        baseline: number(row, "baseline")?,
        z: number(row, "z")?,
        minute_ms: row.try_get("minute_ms")?,
        detected_ms: row.try_get("detected_ms")?,
        deliveries: Vec::new(),
    })
}

fn delivery(row: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        alert_id: row.try_get("alert_id")?,
        webhook_id: row.try_get("webhook_id")?,
        url: row.try_get("url")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}
