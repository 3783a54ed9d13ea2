//! Reading usage analytics for the pages: series (the last hour by minute, the last 30 days by
//! day) for everything, a route, a consumer or both; consumers ranked by requests; requests per
//! consumer since a time (quota use); and each gateway's recent totals (the fleet page). Series
//! of a route or of everything read the per-route tables: one row per route and slot.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use super::store::{Store, StoreError};
use super::store_usage::{Counts, DAY_MS, counts};

/// Which requests a series counts.
#[derive(Debug, Clone, Copy)]
pub enum Slice<'a> {
    /// Every route and consumer.
    All,
    /// One route, every consumer.
    Route(&'a str),
    /// One consumer, every route.
    Consumer(&'a str),
    /// One route and one consumer.
    Both(&'a str, &'a str),
}

/// How far back a series goes and by what step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last 60 minutes, by minute (the current minute last).
    Hour,
    /// The last 30 days, by UTC day (today last).
    Month,
}

impl Span {
    /// (slot length in ms, number of slots).
    pub fn slots(self) -> (i64, i64) {
        match self {
            Span::Hour => (60_000, 60),
            Span::Month => (DAY_MS, 30),
        }
    }

    /// The first slot's start, for a series ending with the slot of `now_ms`.
    pub fn start(self, now_ms: i64) -> i64 {
        let (step, n) = self.slots();
        now_ms - now_ms.rem_euclid(step) - (n - 1) * step
    }
}

/// The step of per-consumer totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grain {
    /// `usage_minutes`.
    Minute,
    /// `usage_consumer_hours`.
    Hour,
    /// `usage_consumer_days`.
    Day,
}

/// One slot of a series: its start (Unix ms) and what it counted.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Start of the minute or day.
    pub at_ms: i64,
    /// Requests, errors and latency in it.
    pub counts: Counts,
}

/// A consumer's totals over a window.
#[derive(Debug, Clone)]
pub struct ConsumerTotal {
    /// Consumer name.
    pub consumer: String,
    /// Requests.
    pub requests: i64,
    /// Of which 5xx.
    pub errors: i64,
    /// Of which 4xx.
    pub client_errors: i64,
}

impl Store {
    /// The series of `slice` over `span` ending now: every slot, empty ones included.
    pub async fn usage_series(
        &self,
        span: Span,
        slice: Slice<'_>,
        now_ms: i64,
    ) -> Result<Vec<Slot>, StoreError> {
        let (step, n) = span.slots();
        let start = span.start(now_ms);
        let (per_route, per_consumer, time) = match span {
            Span::Hour => ("usage_route_minutes", "usage_minutes", "minute_ms"),
            Span::Month => ("usage_route_days", "usage_days", "day_ms"),
        };
        let (table, filter, binds) = match slice {
            Slice::All => (per_route, "", vec![]),
            Slice::Route(r) => (per_route, " AND route = $2", vec![r]),
            Slice::Consumer(c) => (per_consumer, " AND consumer = $2", vec![c]),
            Slice::Both(r, c) => (
                per_consumer,
                " AND consumer = $2 AND route = $3",
                vec![c, r],
            ),
        };
        let sql = format!(
            "SELECT {time} AS t, requests, errors, client_errors, latency FROM {table} \
             WHERE {time} >= $1{filter}"
        );
        let mut query = sqlx::query(&sql).bind(start);
        for value in binds {
            query = query.bind(value);
        }
        let mut by_slot: BTreeMap<i64, Counts> = (0..n)
            .map(|i| (start + i * step, Counts::default()))
            .collect();
        for row in query.fetch_all(&self.pool).await? {
            let t: i64 = row.try_get("t")?;
            if let Some(slot) = by_slot.get_mut(&t) {
                slot.add(&counts(&row)?);
            }
        }
        Ok(by_slot
            .into_iter()
            .map(|(at_ms, counts)| Slot { at_ms, counts })
            .collect())
    }

    /// The routes with requests in the last 30 days, by name.
    pub async fn usage_routes(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            // By an expression, so that SQLite reads the window in `usage_route_days_by_time`
            // rather than every route's 400 days in the table's (route, day) order.
            "SELECT DISTINCT route || '' AS route FROM usage_route_days WHERE day_ms >= $1 ORDER BY 1",
        )
        .bind(Span::Month.start(now_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("route").map_err(StoreError::from))
            .collect()
    }

    /// Each gateway's (requests, 5xx) from `since_ms` on.
    pub async fn usage_nodes_since(
        &self,
        since_ms: i64,
    ) -> Result<HashMap<String, (i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT node, CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(errors) AS BIGINT) AS errors \
             FROM usage_nodes WHERE minute_ms >= $1 GROUP BY node",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("node")?,
                    (r.try_get("requests")?, r.try_get("errors")?),
                ))
            })
            .collect()
    }
}
