//! Usage analytics in the store (schema 3): the gateways' usage reports added up per (minute,
//! route, consumer) in `usage_minutes` and per UTC day in `usage_days`, each route's totals over
//! all consumers in `usage_route_minutes` and `usage_route_days` (so a route's chart reads one
//! row per slot), and each gateway's own totals per minute in `usage_nodes`. Reports carry
//! deltas: every table is added to, never overwritten. Latency histograms are sparse text
//! (`crate::latency`), added up here. Reading for the pages is in `store_usage_read.rs`.

use std::collections::HashMap;

use sqlx::Row;

use super::store::{Store, StoreError};
use crate::latency::{self, BUCKETS};

/// Minutes are kept this long.
pub const KEEP_MINUTES_MS: i64 = 48 * 3_600_000;
/// Days are kept this long.
pub const KEEP_DAYS_MS: i64 = 400 * DAY_MS;
/// One UTC day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// One (minute, route, consumer) of `usage_minutes`, summed over gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageMinute {
    /// Start of the UTC minute, Unix ms.
    pub minute_ms: i64,
    /// Route name (`(unmatched)` when none matched).
    pub route: String,
    /// Consumer (`(anonymous)` when none was identified, `(other)` past a gateway's key cap).
    pub consumer: String,
    /// Requests finished.
    pub requests: i64,
    /// Of which answered 5xx.
    pub errors: i64,
    /// Of which answered 4xx.
    pub client_errors: i64,
}

/// Counts and a latency histogram: one row of a report, or of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Requests finished.
    pub requests: i64,
    /// Of which answered 5xx.
    pub errors: i64,
    /// Of which answered 4xx.
    pub client_errors: i64,
    /// Latency histogram (`crate::latency` buckets).
    pub latency: [u64; BUCKETS],
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: 0,
            client_errors: 0,
            latency: [0; BUCKETS],
        }
    }
}

impl Counts {
    /// Add `other` in.
    pub fn add(&mut self, other: &Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.client_errors = self.client_errors.saturating_add(other.client_errors);
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            *a = a.saturating_add(*b);
        }
    }
}

/// One row of a gateway's usage report, checked.
#[derive(Debug, Clone)]
pub struct ReportRow {
    /// Start of the UTC minute, Unix ms.
    pub minute_ms: i64,
    /// Route name.
    pub route: String,
    /// Consumer.
    pub consumer: String,
    /// What was counted.
    pub counts: Counts,
}

/// Where a table's time column is and what it is called.
struct Grain {
    table: &'static str,
    time: &'static str,
}

const MINUTES: Grain = Grain {
    table: "usage_minutes",
    time: "minute_ms",
};
const DAYS: Grain = Grain {
    table: "usage_days",
    time: "day_ms",
};
const ROUTE_MINUTES: Grain = Grain {
    table: "usage_route_minutes",
    time: "minute_ms",
};
const ROUTE_DAYS: Grain = Grain {
    table: "usage_route_days",
    time: "day_ms",
};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Store {
    /// Add one gateway's report: every row to the minute and day tables (per consumer and per
    /// route), and the gateway's totals per minute to `usage_nodes`. One transaction.
    pub async fn add_usage(&self, node: &str, rows: &[ReportRow]) -> Result<(), StoreError> {
        let mut minutes: HashMap<(i64, &str, &str), Counts> = HashMap::new();
        let mut days: HashMap<(i64, &str, &str), Counts> = HashMap::new();
        let mut route_minutes: HashMap<(i64, &str), Counts> = HashMap::new();
        let mut route_days: HashMap<(i64, &str), Counts> = HashMap::new();
        let mut nodes: HashMap<i64, (i64, i64)> = HashMap::new();
        let mut consumer_hours: HashMap<(i64, &str), Counts> = HashMap::new();
        let mut consumer_days: HashMap<(i64, &str), Counts> = HashMap::new();
        for row in rows {
            let day = row.minute_ms - row.minute_ms.rem_euclid(DAY_MS);
            let (route, consumer) = (row.route.as_str(), row.consumer.as_str());
            let c = &row.counts;
            minutes
                .entry((row.minute_ms, route, consumer))
                .or_default()
                .add(c);
            days.entry((day, route, consumer)).or_default().add(c);
            route_minutes
                .entry((row.minute_ms, route))
                .or_default()
                .add(c);
            route_days.entry((day, route)).or_default().add(c);
            let hour = row.minute_ms - row.minute_ms.rem_euclid(3_600_000);
            consumer_hours.entry((hour, consumer)).or_default().add(c);
            consumer_days.entry((day, consumer)).or_default().add(c);
            let n = nodes.entry(row.minute_ms).or_default();
            *n = (n.0.saturating_add(c.requests), n.1.saturating_add(c.errors));
        }
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        for ((t, route, consumer), c) in &minutes {
            add_row(&mut tx, &MINUTES, *t, route, Some(consumer), c).await?;
        }
        for ((t, route, consumer), c) in &days {
            add_row(&mut tx, &DAYS, *t, route, Some(consumer), c).await?;
        }
        for ((t, route), c) in &route_minutes {
            add_row(&mut tx, &ROUTE_MINUTES, *t, route, None, c).await?;
        }
        for ((t, route), c) in &route_days {
            add_row(&mut tx, &ROUTE_DAYS, *t, route, None, c).await?;
        }
        for ((t, consumer), c) in &consumer_hours {
            add_totals(&mut tx, "usage_consumer_hours", "hour_ms", *t, consumer, c).await?;
        }
        for ((t, consumer), c) in &consumer_days {
            add_totals(&mut tx, "usage_consumer_days", "day_ms", *t, consumer, c).await?;
        }
        for (minute, (requests, errors)) in &nodes {
            add_node(&mut tx, node, *minute, *requests, *errors).await?;
        }
        tx.commit().await?;
        let first = |slots: &mut dyn Iterator<Item = i64>| slots.min().unwrap_or(i64::MAX);
        self.kept.stored(
            first(&mut consumer_hours.keys().map(|k| k.0)),
            first(&mut consumer_days.keys().map(|k| k.0)),
        );
        Ok(())
    }

    /// Every row of `usage_minutes` from `since_ms` on, oldest first.
    pub async fn usage_minutes_since(&self, since_ms: i64) -> Result<Vec<UsageMinute>, StoreError> {
        let rows = sqlx::query(
            "SELECT minute_ms, route, consumer, requests, errors, client_errors FROM usage_minutes \
             WHERE minute_ms >= $1 ORDER BY minute_ms, route, consumer",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageMinute {
                    minute_ms: r.try_get("minute_ms")?,
                    route: r.try_get("route")?,
                    consumer: r.try_get("consumer")?,
                    requests: r.try_get("requests")?,
                    errors: r.try_get("errors")?,
                    client_errors: r.try_get("client_errors")?,
                })
            })
            .collect()
    }

    /// Drop minutes older than 48 hours and days older than 400 days (before `now_ms`);
    /// returns how many rows went.
    pub async fn prune_usage(&self, now_ms: i64) -> Result<u64, StoreError> {
        let _w = self.write.lock().await;
        let mut gone = 0;
        for (table, time, keep) in [
            ("usage_minutes", "minute_ms", KEEP_MINUTES_MS),
            ("usage_route_minutes", "minute_ms", KEEP_MINUTES_MS),
            ("usage_nodes", "minute_ms", KEEP_MINUTES_MS),
            ("usage_consumer_hours", "hour_ms", KEEP_MINUTES_MS),
            ("usage_consumer_days", "day_ms", KEEP_DAYS_MS),
            ("usage_days", "day_ms", KEEP_DAYS_MS),
            ("usage_route_days", "day_ms", KEEP_DAYS_MS),
        ] {
            let sql = format!("DELETE FROM {table} WHERE {time} < $1");
            gone += sqlx::query(&sql)
                .bind(now_ms - keep)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        if gone > 0 {
            self.kept.pruned();
        }
        Ok(gone)
    }
}

/// Add `c` to the row of (`t`, `route`, `consumer`) in `grain`'s table (consumer `None`: a
/// per-route table), creating it when absent.
async fn add_row(
    tx: &mut Tx<'_>,
    grain: &Grain,
    t: i64,
    route: &str,
    consumer: Option<&str>,
    c: &Counts,
) -> Result<(), StoreError> {
    let Grain { table, time } = grain;
    let who = if consumer.is_some() {
        " AND consumer = $3"
    } else {
        ""
    };
    let select = format!(
        "SELECT requests, errors, client_errors, latency FROM {table} WHERE {time} = $1 AND route = $2{who}"
    );
    let mut query = sqlx::query(&select).bind(t).bind(route);
    if let Some(consumer) = consumer {
        query = query.bind(consumer);
    }
    let old = query.fetch_optional(&mut **tx).await?;
    let mut sum = c.clone();
    if let Some(old) = &old {
        sum.add(&counts(old)?);
    }
    let latency = latency::encode(&sum.latency);
    // The counts' placeholders follow the key's: $4.. with a consumer, $3.. without.
    let n = if consumer.is_some() { 4 } else { 3 };
    let (a, b, c2, d) = (n, n + 1, n + 2, n + 3);
    let sql = match (&old, consumer) {
        (Some(_), _) => format!(
            "UPDATE {table} SET requests = ${a}, errors = ${b}, client_errors = ${c2}, latency = ${d} \
             WHERE {time} = $1 AND route = $2{who}"
        ),
        (None, Some(_)) => format!(
            "INSERT INTO {table} ({time}, route, consumer, requests, errors, client_errors, latency) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        (None, None) => format!(
            "INSERT INTO {table} ({time}, route, requests, errors, client_errors, latency) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        ),
    };
    let mut query = sqlx::query(&sql).bind(t).bind(route);
    if let Some(consumer) = consumer {
        query = query.bind(consumer);
    }
    query
        .bind(sum.requests)
        .bind(sum.errors)
        .bind(sum.client_errors)
        .bind(latency)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Add a consumer's totals of one hour or day to `table` (no latency there).
async fn add_totals(
    tx: &mut Tx<'_>,
    table: &str,
    time: &str,
    t: i64,
    consumer: &str,
    c: &Counts,
) -> Result<(), StoreError> {
    let update = format!(
        "UPDATE {table} SET requests = requests + $3, errors = errors + $4, \
         client_errors = client_errors + $5 WHERE {time} = $1 AND consumer = $2"
    );
    let insert = format!(
        "INSERT INTO {table} ({time}, consumer, requests, errors, client_errors) \
         VALUES ($1, $2, $3, $4, $5)"
    );
    for sql in [update, insert] {
        let done = sqlx::query(&sql)
            .bind(t)
            .bind(consumer)
            .bind(c.requests)
            .bind(c.errors)
            .bind(c.client_errors)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() > 0 {
            break;
        }
    }
    Ok(())
}

/// Add a gateway's totals of one minute to `usage_nodes`.
async fn add_node(
    tx: &mut Tx<'_>,
    node: &str,
    minute: i64,
    requests: i64,
    errors: i64,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE usage_nodes SET requests = requests + $3, errors = errors + $4 \
         WHERE node = $1 AND minute_ms = $2",
    )
    .bind(node)
    .bind(minute)
    .bind(requests)
    .bind(errors)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO usage_nodes (node, minute_ms, requests, errors) VALUES ($1, $2, $3, $4)",
        )
        .bind(node)
        .bind(minute)
        .bind(requests)
        .bind(errors)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The counts of a row with `requests`, `errors`, `client_errors` and `latency`.
pub(super) fn counts(row: &sqlx::any::AnyRow) -> Result<Counts, StoreError> {
    let mut c = Counts {
        requests: row.try_get("requests")?,
        errors: row.try_get("errors")?,
        client_errors: row.try_get("client_errors")?,
        latency: [0; BUCKETS],
    };
    let text: String = row.try_get("latency")?;
    latency::add_text(&mut c.latency, &text).map_err(StoreError::Corrupt)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::control::store_usage_read::{Slice, Span};

    fn row(minute_ms: i64, route: &str, consumer: &str, requests: i64, errors: i64) -> ReportRow {
        let mut counts = Counts {
            requests,
            errors,
            client_errors: 1,
            ..Counts::default()
        };
        counts.latency[latency::bucket(2_000)] = u64::try_from(requests).unwrap_or(0);
        ReportRow {
            minute_ms,
            route: route.into(),
            consumer: consumer.into(),
            counts,
        }
    }

    #[tokio::test]
    async fn reports_from_two_gateways_add_up_and_old_rows_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::open(&url).await.unwrap();
        let now = crate::control::now_ms();
        let minute = now - now.rem_euclid(60_000);
        store
            .add_usage(
                "gw-a",
                &[
                    row(minute, "orders", "alice", 5, 1),
                    row(minute, "orders", "bob", 2, 0),
                ],
            )
            .await
            .unwrap();
        store
            .add_usage("gw-b", &[row(minute, "orders", "alice", 3, 2)])
            .await
            .unwrap();
        let rows = store.usage_minutes_since(minute).await.unwrap();
        let alice = rows.iter().find(|r| r.consumer == "alice").unwrap();
        assert_eq!(
            (alice.requests, alice.errors, alice.client_errors),
            (8, 3, 2)
        );
        assert_eq!(rows.len(), 2);
        let hour = store
            .usage_series(Span::Hour, Slice::Route("orders"), now)
            .await
            .unwrap();
        let last = hour.last().unwrap();
        assert_eq!((last.counts.requests, last.counts.errors), (10, 3));
        assert_eq!(last.counts.latency.iter().sum::<u64>(), 10);
        let month = store
            .usage_series(Span::Month, Slice::Both("orders", "bob"), now)
            .await
            .unwrap();
        assert_eq!(month.last().unwrap().counts.requests, 2);
        let nodes = store.usage_nodes_since(minute).await.unwrap();
        assert_eq!(nodes.get("gw-a"), Some(&(7, 1)));
        let top = store
            .usage_top_consumers(
                minute,
                crate::control::store_usage_read::Grain::Hour,
                Some(1),
            )
            .await
            .unwrap();
        assert_eq!(
            top.first().map(|t| (t.consumer.as_str(), t.requests)),
            Some(("alice", 8))
        );
        assert_eq!(store.prune_usage(now).await.unwrap(), 0);
        // Two days on, the minutes (2 per consumer, 1 per route, 2 per node) and the consumer
        // hours (2) are gone and the days stay.
        assert_eq!(
            store.prune_usage(now + 2 * DAY_MS).await.unwrap(),
            2 + 1 + 2 + 2
        );
        assert!(store.usage_minutes_since(0).await.unwrap().is_empty());
    }
}
