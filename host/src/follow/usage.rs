//! Usage reports: every [`EVERY`], what the proxy's tally counted since the last report is sent
//! to the control plane (`POST /v1/node/usage`, the node token) as rows of (minute, route,
//! consumer, requests, errors, client errors, latency histogram). The control plane adds them
//! up, so each row is sent once: a report that fails is kept and sent with the next one, for
//! up to [`KEEP_MS`] (older rows are dropped, and so are rows past [`MAX_PENDING`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::ctl::ControlClient;
use crate::proxy::tally::{self, Counts, Row, Tally};

/// How often the tally is reported.
pub const EVERY: Duration = Duration::from_secs(5);
/// Rows a failed report keeps for the next one at most this long.
const KEEP_MS: i64 = 3_600_000;
/// Rows kept across failed reports at most.
const MAX_PENDING: usize = 100_000;
/// Rows in one report at most (the control plane takes up to 20,000).
const BATCH: usize = 10_000;
const CALL: Duration = Duration::from_secs(10);

/// Report `tally` for `node` through `client`, forever.
pub async fn report_loop(client: ControlClient, node: String, tally: Arc<Tally>) {
    let mut pending: Vec<Row> = Vec::new();
    let mut interval = tokio::time::interval(EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        pending = merge(pending, tally.take());
        let oldest = crate::control::now_ms() - KEEP_MS;
        pending.retain(|r| r.minute_ms >= oldest);
        pending.truncate(MAX_PENDING);
        while !pending.is_empty() {
            let cut = pending.len().saturating_sub(BATCH);
            let batch = pending.split_off(cut);
            let body = serde_json::json!({
                "node": node,
                "rows": batch.iter().map(row_json).collect::<Vec<_>>(),
            });
            if let Err(e) = client
                .json(Method::POST, "/v1/node/usage", Some(&body), CALL)
                .await
            {
                tracing::debug!(error = %e, rows = batch.len(), "usage report failed; kept for the next one");
                pending.extend(batch);
                break;
            }
        }
    }
}

/// `old` and `new` with rows of the same (minute, route, consumer) added up.
fn merge(old: Vec<Row>, new: Vec<Row>) -> Vec<Row> {
    if old.is_empty() {
        return new;
    }
    let mut by_key: HashMap<(i64, Arc<str>, String), Counts> = HashMap::new();
    for row in old.into_iter().chain(new) {
        let slot = by_key
            .entry((row.minute_ms, row.route, row.consumer))
            .or_default();
        tally::add(slot, &row.counts);
    }
    by_key
        .into_iter()
        .map(|((minute_ms, route, consumer), counts)| Row {
            minute_ms,
            route,
            consumer,
            counts,
        })
        .collect()
}

fn row_json(row: &Row) -> serde_json::Value {
    serde_json::json!({
        "minute_ms": row.minute_ms,
        "route": &*row.route,
        "consumer": row.consumer,
        "requests": row.counts.requests,
        "errors": row.counts.errors,
        "client_errors": row.counts.client_errors,
        "latency": crate::latency::encode(&row.counts.latency),
    })
}
