//! Each consumer's totals over a window (top consumers, quota use), read fast with a year of
//! data: a window of hours or days is cut at the current slot (this hour, today). The part
//! before the cut is summed once and kept in memory (`KeptTotals`); the part from the cut on,
//! which the gateways are still writing, is summed again after each report (one row per
//! consumer). The kept sums are exact: every usage report drops those it could change (a report
//! may carry minutes up to 48 hours back), and a sum read while a report was being stored is
//! not kept.
//! One control plane process owns a database, so nothing else writes behind this cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::Row;

use super::store::{Store, StoreError, now_ms};
use super::store_usage::DAY_MS;
use super::store_usage_read::{ConsumerTotal, Grain};

/// A consumer's (requests, 5xx, 4xx).
type Sums = (i64, i64, i64);

/// Each consumer's sums over some slots.
type ByConsumer = Arc<HashMap<String, Sums>>;

/// Which settled sum: the grain, the window's first slot, the cut (the current slot then).
type Key = (Grain, i64, i64);

/// Per-consumer sums kept between requests: those of settled slots until a report touches
/// them, those of the current slots until the next report.
#[derive(Default)]
pub struct KeptTotals {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Bumped by every stored report: a sum read across a bump is not kept.
    generation: u64,
    /// Sums from a window's first slot to the cut.
    settled: HashMap<Key, ByConsumer>,
    /// Sums from (grain, slot) on, as of `generation`.
    live: HashMap<(Grain, i64), ByConsumer>,
}

impl KeptTotals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding the lock leaves maps that are still whole: keep using them.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A report was stored that touched hours from `first_hour` and days from `first_day` on:
    /// drop the live sums and every settled sum that holds one of them.
    pub fn stored(&self, first_hour: i64, first_day: i64) {
        let mut kept = self.lock();
        kept.generation = kept.generation.wrapping_add(1);
        kept.live.clear();
        kept.settled.retain(|(grain, _, cut), _| match grain {
            Grain::Hour => first_hour >= *cut,
            Grain::Day => first_day >= *cut,
            Grain::Minute => false,
        });
    }

    /// Rows were pruned: forget everything.
    pub fn pruned(&self) {
        let mut kept = self.lock();
        kept.generation = kept.generation.wrapping_add(1);
        kept.live.clear();
        kept.settled.clear();
    }

    /// The settled sum of `key` if kept, and the generation to keep a fresh one with.
    fn settled(&self, key: &Key) -> (Option<ByConsumer>, u64) {
        let kept = self.lock();
        (kept.settled.get(key).cloned(), kept.generation)
    }

    /// The live sum from (grain, slot) if kept, and the generation to keep a fresh one with.
    fn live(&self, from: &(Grain, i64)) -> (Option<ByConsumer>, u64) {
        let kept = self.lock();
        (kept.live.get(from).cloned(), kept.generation)
    }

    /// Keep a settled sum read at `generation` unless a report was stored since; older cuts of
    /// the same grain are dropped (their hour or day has passed).
    fn keep_settled(&self, key: Key, generation: u64, sums: ByConsumer) {
        let mut kept = self.lock();
        if kept.generation == generation {
            kept.settled
                .retain(|(g, _, cut), _| *g != key.0 || *cut == key.2);
            kept.settled.insert(key, sums);
        }
    }

    /// Keep a live sum read at `generation` unless a report was stored since.
    fn keep_live(&self, from: (Grain, i64), generation: u64, sums: ByConsumer) {
        let mut kept = self.lock();
        if kept.generation == generation {
            // A few windows are read; starts of past minutes, hours or days are not read again.
            if kept.live.len() >= 16 {
                kept.live.clear();
            }
            kept.live.insert(from, sums);
        }
    }
}

/// The table, time column and slot length of a grain.
fn table(grain: Grain) -> (&'static str, &'static str, i64) {
    match grain {
        Grain::Minute => ("usage_minutes", "minute_ms", 60_000),
        Grain::Hour => ("usage_consumer_hours", "hour_ms", 3_600_000),
        Grain::Day => ("usage_consumer_days", "day_ms", DAY_MS),
    }
}

impl Store {
    /// Consumers by requests from `since_ms` on, read per `grain` (so from the start of the
    /// minute, hour or day holding `since_ms`), most first, then by name; at most `limit`
    /// (`None`: all).
    pub async fn usage_top_consumers(
        &self,
        since_ms: i64,
        grain: Grain,
        limit: Option<usize>,
    ) -> Result<Vec<ConsumerTotal>, StoreError> {
        let (_, _, step) = table(grain);
        let start = since_ms - since_ms.rem_euclid(step);
        let now = now_ms();
        let cut = now - now.rem_euclid(step);
        let settle = grain != Grain::Minute && start < cut;
        let live_from = if settle { cut } else { start };
        let mut sums = HashMap::<String, Sums>::new();
        let mut add = |part: &HashMap<String, Sums>| {
            for (consumer, (r, e, c)) in part {
                let sum = sums.entry(consumer.clone()).or_default();
                *sum = (
                    sum.0.saturating_add(*r),
                    sum.1.saturating_add(*e),
                    sum.2.saturating_add(*c),
                );
            }
        };
        add(&*self.live_totals(grain, live_from).await?);
        if settle {
            add(&*self.settled_totals((grain, start, cut)).await?);
        }
        let mut totals: Vec<ConsumerTotal> = sums
            .into_iter()
            .map(
                |(consumer, (requests, errors, client_errors))| ConsumerTotal {
                    consumer,
                    requests,
                    errors,
                    client_errors,
                },
            )
            .collect();
        totals.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.consumer.cmp(&b.consumer))
        });
        totals.truncate(limit.unwrap_or(usize::MAX));
        Ok(totals)
    }

    /// Each consumer's sums from slot `from` on, kept until the next report.
    async fn live_totals(&self, grain: Grain, from: i64) -> Result<ByConsumer, StoreError> {
        let (kept, generation) = self.kept.live(&(grain, from));
        if let Some(sums) = kept {
            return Ok(sums);
        }
        let sums = Arc::new(self.sum_by_consumer(grain, from, None).await?);
        self.kept.keep_live((grain, from), generation, sums.clone());
        Ok(sums)
    }

    /// Each consumer's sums from the window's first slot to the cut, kept until a report
    /// touches them or the cut moves on.
    async fn settled_totals(&self, key: Key) -> Result<ByConsumer, StoreError> {
        let (kept, generation) = self.kept.settled(&key);
        if let Some(sums) = kept {
            return Ok(sums);
        }
        let (grain, start, cut) = key;
        let sums = Arc::new(self.sum_by_consumer(grain, start, Some(cut)).await?);
        self.kept.keep_settled(key, generation, sums.clone());
        Ok(sums)
    }

    /// Each consumer's sums in `grain`'s table from slot `from` on, before slot `to` if given.
    async fn sum_by_consumer(
        &self,
        grain: Grain,
        from: i64,
        to: Option<i64>,
    ) -> Result<HashMap<String, Sums>, StoreError> {
        let (table, time, _) = table(grain);
        let before = if to.is_some() {
            format!(" AND {time} < $2")
        } else {
            String::new()
        };
        // Grouped by an expression, so that SQLite scans the window in the covering `*_totals`
        // index rather than all of another one (for its order).
        let sql = format!(
            "SELECT consumer || '' AS consumer, CAST(SUM(requests) AS BIGINT) AS requests, \
             CAST(SUM(errors) AS BIGINT) AS errors, CAST(SUM(client_errors) AS BIGINT) AS client_errors \
             FROM {table} WHERE {time} >= $1{before} GROUP BY 1"
        );
        let mut query = sqlx::query(&sql).bind(from);
        if let Some(to) = to {
            query = query.bind(to);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("consumer")?,
                    (
                        r.try_get("requests")?,
                        r.try_get("errors")?,
                        r.try_get("client_errors")?,
                    ),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::control::store_usage::{Counts, ReportRow};

    fn row(minute_ms: i64, consumer: &str, requests: i64) -> ReportRow {
        ReportRow {
            minute_ms,
            route: "orders".into(),
            consumer: consumer.into(),
            counts: Counts {
                requests,
                ..Counts::default()
            },
        }
    }

    async fn top(store: &Store, since: i64, grain: Grain) -> Vec<(String, i64)> {
        let totals = store.usage_top_consumers(since, grain, None).await.unwrap();
        totals
            .into_iter()
            .map(|t| (t.consumer, t.requests))
            .collect()
    }

    #[tokio::test]
    async fn kept_sums_follow_late_reports_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::open(&url).await.unwrap();
        let now = now_ms();
        let minute = now - now.rem_euclid(60_000);
        let (two_hours_ago, yesterday) = (minute - 2 * 3_600_000, minute - DAY_MS);
        let rows = [row(minute, "alice", 5), row(two_hours_ago, "bob", 7)];
        store.add_usage("gw", &rows).await.unwrap();
        let day_ago = now - DAY_MS + 3_600_000;
        let month = now - 29 * DAY_MS;
        let both = vec![("bob".to_owned(), 7), ("alice".to_owned(), 5)];
        assert_eq!(top(&store, day_ago, Grain::Hour).await, both);
        // Read twice: the second answer comes from the kept sums.
        assert_eq!(top(&store, day_ago, Grain::Hour).await, both);
        assert_eq!(top(&store, month, Grain::Day).await, both);
        // A report this minute, one into a past hour, one into yesterday: all counted.
        store
            .add_usage("gw", &[row(minute, "bob", 1)])
            .await
            .unwrap();
        assert_eq!(
            top(&store, day_ago, Grain::Hour).await[0],
            ("bob".into(), 8)
        );
        store
            .add_usage("gw", &[row(two_hours_ago, "alice", 10)])
            .await
            .unwrap();
        assert_eq!(
            top(&store, day_ago, Grain::Hour).await[0],
            ("alice".into(), 15)
        );
        store
            .add_usage("gw", &[row(yesterday, "carol", 100)])
            .await
            .unwrap();
        assert_eq!(
            top(&store, month, Grain::Day).await,
            vec![
                ("carol".to_owned(), 100),
                ("alice".to_owned(), 15),
                ("bob".to_owned(), 8)
            ]
        );
        // The current minute alone, and a limit.
        let this_minute = store
            .usage_top_consumers(minute, Grain::Minute, Some(1))
            .await
            .unwrap();
        assert_eq!(this_minute.len(), 1);
        assert_eq!(this_minute[0].requests, 5);
        // Three days on, the hours are pruned and no kept sum outlives them.
        store.prune_usage(now + 3 * DAY_MS).await.unwrap();
        assert!(top(&store, day_ago, Grain::Hour).await.is_empty());
    }
}
