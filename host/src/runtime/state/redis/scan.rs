//! `scan_counters` on Redis: a `SCAN MATCH <prefix>*` walk with `MGET` of each page, on the one
//! node or on each primary of a cluster in turn (a cursor belongs to one node).

use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::RoutingInfo;
use redis::{AsyncCommands, Cmd, RedisError};

use super::{Conn, RedisState, StateError, cluster};

/// Keys per SCAN round trip.
const SCAN_BATCH: usize = 1000;
/// Bound on a whole walk (each round trip is also bounded by the backend's timeout).
const SCAN_DEADLINE: Duration = Duration::from_secs(10);

/// Where a `SCAN` walk runs: the one node, or one primary of a cluster.
pub(super) enum ScanOn {
    Node(Conn),
    At(ClusterConnection, RoutingInfo),
}

impl ScanOn {
    async fn scan(&mut self, cmd: Cmd) -> Result<(u64, Vec<String>), RedisError> {
        match self {
            ScanOn::Node(conn) => cmd.query_async(conn).await,
            ScanOn::At(conn, route) => {
                let reply = conn.route_command(cmd, route.clone()).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }
}

/// Every live counter whose key (after the backend's prefix) starts with `prefix`.
pub(super) async fn counters(
    state: &RedisState,
    prefix: &str,
) -> Result<Vec<(String, i64)>, StateError> {
    let every_node = async {
        let pattern = format!("{}*", glob_escape(&state.key(prefix)));
        let mut out = Vec::new();
        match state.conn()? {
            conn @ Conn::Node(_) => walk(state, ScanOn::Node(conn), &pattern, &mut out).await?,
            Conn::Cluster(lazy) => {
                for on in cluster::primaries(state, &lazy).await? {
                    walk(state, on, &pattern, &mut out).await?;
                }
            }
        }
        Ok(out)
    };
    match tokio::time::timeout(SCAN_DEADLINE, every_node).await {
        Ok(result) => result,
        Err(_) => Err(StateError::Backend(format!(
            "{}: scanning counters took more than {} s",
            state.backend,
            SCAN_DEADLINE.as_secs()
        ))),
    }
}

/// Add every live counter matching `pattern` on one node to `out` (prefix stripped). Values are
/// read with `MGET`, which a cluster connection splits by slot.
async fn walk(
    state: &RedisState,
    mut on: ScanOn,
    pattern: &str,
    out: &mut Vec<(String, i64)>,
) -> Result<(), StateError> {
    let mut conn = state.conn()?;
    let mut cursor: u64 = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH);
        let (next, keys) = state.bounded("scan", on.scan(scan)).await?;
        if !keys.is_empty() {
            let values: Vec<Option<String>> = state.bounded("scan", conn.mget(&keys)).await?;
            for (full, value) in keys.into_iter().zip(values) {
                // Counters are integers; values and buckets (decimals) are skipped.
                let Some(n) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    continue;
                };
                if let Some(key) = full.strip_prefix(&state.key_prefix) {
                    out.push((key.to_owned(), n));
                }
            }
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Escape glob metacharacters for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
