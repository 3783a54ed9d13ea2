//! Redis Cluster: the connection, opened in the background on first use, and the two operations
//! that cannot simply be routed by one key: `incr_many` (a script's keys must share a hash slot,
//! or the cluster answers `CROSSSLOT`) and `scan_counters` (each primary scans its own keys).
//!
//! `incr_many` groups the batch by hash slot. One slot: one script, as on a single node. Several:
//! first a read-only check script per slot, all at once, so a key of another kind fails the batch
//! before anything changes; then one `incr_many` script per slot, all at once, each atomic on its
//! node; the values go back in the order of the batch. A key listed twice lands in the same
//! slot, so its increments keep their order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{ErrorKind, RedisError, RedisResult, Value};
use tokio::sync::watch;

use super::scan::ScanOn;
use super::{RedisState, StateError, classify};

/// Where the cluster connection stands.
#[derive(Clone)]
enum Link {
    /// No attempt yet.
    Idle,
    /// One attempt in flight (the only one).
    Connecting,
    /// Connected: the connection reconnects to nodes and follows the cluster's layout itself.
    Ready(ClusterConnection),
    /// The last attempt failed; the next call starts another.
    Failed(RedisError),
}

/// A cluster connection opened on first use by a background task, so that a gateway starts
/// while the cluster is down and a call cancelled by its timeout does not cancel the attempt.
pub(super) struct LazyCluster {
    client: ClusterClient,
    link: watch::Sender<Link>,
}

impl LazyCluster {
    /// Check the seed URLs (parseable, the same TLS mode and credentials); connect nothing yet.
    pub(super) fn new(nodes: &[String], timeout: Duration) -> Result<Self, StateError> {
        // Connecting and each node's answer get at least a second: a call gives up at `timeout`
        // anyway, and a shorter bound would cancel attempts that would succeed.
        let patience = timeout.max(Duration::from_secs(1));
        let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .connection_timeout(patience)
            .response_timeout(patience)
            .build()
            .map_err(|e| StateError::Invalid(format!("redis cluster nodes: {e}")))?;
        Ok(Self {
            client,
            link: watch::Sender::new(Link::Idle),
        })
    }

    /// The connection; starts an attempt when there is none and none is in flight, and waits for
    /// it (the caller's timeout bounds the wait).
    pub(super) async fn get(self: &Arc<Self>) -> RedisResult<ClusterConnection> {
        if let Link::Ready(conn) = &*self.link.borrow() {
            return Ok(conn.clone());
        }
        let mut start = false;
        self.link.send_if_modified(|link| match link {
            Link::Ready(_) | Link::Connecting => false,
            Link::Idle | Link::Failed(_) => {
                *link = Link::Connecting;
                start = true;
                true
            }
        });
        let mut seen = self.link.subscribe();
        if start {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                let link = match me.client.get_async_connection().await {
                    Ok(conn) => Link::Ready(conn),
                    Err(e) => {
                        tracing::debug!(error = %e, "redis cluster: connecting failed");
                        Link::Failed(e)
                    }
                };
                me.link.send_replace(link);
            });
        }
        let link = seen
            .wait_for(|link| matches!(link, Link::Ready(_) | Link::Failed(_)))
            .await
            .map_err(|_| not_connected("the connecting task ended"))?;
        match &*link {
            Link::Ready(conn) => Ok(conn.clone()),
            Link::Failed(e) => Err(e.clone()),
            Link::Idle | Link::Connecting => Err(not_connected("no connection")),
        }
    }
}

fn not_connected(detail: &str) -> RedisError {
    RedisError::from((
        ErrorKind::ClusterConnectionNotFound,
        "redis cluster not connected",
        detail.to_owned(),
    ))
}

/// The batch's element indices grouped by hash slot, groups in order of first appearance and
/// indices in batch order within each group.
fn by_slot(state: &RedisState, ops: &[(&str, i64, Option<Duration>)]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<Slot, usize> = HashMap::new();
    for (i, &(key, _, _)) in ops.iter().enumerate() {
        let slot = Slot::for_key(state.key(key));
        let group = *index.entry(slot).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(i);
    }
    groups
}

/// `incr_many` on a cluster (see the module docs). Not bounded here: the caller bounds the whole.
pub(super) async fn incr_many(
    state: &RedisState,
    ops: &[(&str, i64, Option<Duration>)],
) -> Result<Vec<i64>, StateError> {
    let groups = by_slot(state, ops);
    let conn = state.conn()?;
    if groups.len() == 1 {
        return state.incr_many_script(conn, ops, false).await;
    }
    let batches: Vec<Vec<(&str, i64, Option<Duration>)>> = groups
        .iter()
        .map(|group| group.iter().map(|&i| ops[i]).collect())
        .collect();
    // Check every slot first: a key of another kind fails the whole batch with no effect.
    let checks = join_all(
        batches
            .iter()
            .map(|batch| state.incr_many_script(conn.clone(), batch, true)),
    )
    .await;
    first_error(&groups, checks)?;
    let applied = join_all(
        batches
            .iter()
            .map(|batch| state.incr_many_script(conn.clone(), batch, false)),
    )
    .await;
    let mut values = vec![0; ops.len()];
    for (group, result) in groups.iter().zip(applied) {
        for (&i, value) in group.iter().zip(result?) {
            values[i] = value;
        }
    }
    Ok(values)
}

/// The error of the slot whose failing key comes first in the batch (a `WrongKind` names its
/// key; any error of a group counts from the group's first element), or `Ok` when all passed.
fn first_error(
    groups: &[Vec<usize>],
    results: Vec<Result<Vec<i64>, StateError>>,
) -> Result<(), StateError> {
    let mut first: Option<(usize, StateError)> = None;
    for (group, result) in groups.iter().zip(results) {
        let Err(e) = result else { continue };
        let at = group.first().copied().unwrap_or(usize::MAX);
        if first.as_ref().is_none_or(|(earliest, _)| at < *earliest) {
            first = Some((at, e));
        }
    }
    first.map_or(Ok(()), |(_, e)| Err(e))
}

/// One [`ScanOn`] per primary of the cluster, from `CLUSTER SLOTS` (each range's first node is
/// its primary).
pub(super) async fn primaries(
    state: &RedisState,
    lazy: &Arc<LazyCluster>,
) -> Result<Vec<ScanOn>, StateError> {
    let mut conn = state.bounded("scan", lazy.get()).await?;
    let slots = redis::cmd("CLUSTER").arg("SLOTS").clone();
    let reply = state
        .bounded(
            "scan",
            conn.route_command(
                slots,
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            ),
        )
        .await?;
    let mut nodes: Vec<(String, u16)> = Vec::new();
    for node in primary_addresses(reply).map_err(|e| classify(e.into()))? {
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    Ok(nodes
        .into_iter()
        .map(|(host, port)| {
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
            ScanOn::At(conn.clone(), route)
        })
        .collect())
}

/// `(host, port)` of each slot range's primary in a `CLUSTER SLOTS` reply:
/// `[[start, end, [host, port, id, ...], replicas...], ...]`.
fn primary_addresses(reply: Value) -> Result<Vec<(String, u16)>, redis::ParsingError> {
    let ranges: Vec<Vec<Value>> = redis::from_redis_value(reply)?;
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Some(primary) = range.into_iter().nth(2) else {
            continue;
        };
        let node: Vec<Value> = redis::from_redis_value(primary)?;
        let mut fields = node.into_iter();
        let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
            continue;
        };
        out.push((
            redis::from_redis_value(host)?,
            redis::from_redis_value(port)?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::runtime::state::RedisClusterOptions;

    fn backend(prefix: &str) -> RedisState {
        RedisState::cluster(RedisClusterOptions {
            nodes: vec!["redis://127.0.0.1:1".into()],
            timeout: Duration::from_millis(50),
            key_prefix: prefix.into(),
        })
        .unwrap()
    }

    #[test]
    fn a_batch_is_grouped_by_slot_in_order() {
        let state = backend("t:");
        // `{a}x` and `{a}y` share the hash tag's slot; `b` (almost surely) has another.
        let ops = [
            ("{a}x", 1, None),
            ("b", 1, None),
            ("{a}y", 1, None),
            ("{a}x", 2, None),
        ];
        assert_eq!(by_slot(&state, &ops), vec![vec![0, 2, 3], vec![1]]);
        // The prefix is part of the hashed key: braces in it pin every key to one slot.
        let pinned = backend("{fleet}:");
        assert_eq!(by_slot(&pinned, &ops), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn the_first_failing_key_of_the_batch_wins() {
        let groups = vec![vec![1, 3], vec![0, 2]];
        let wrong = |key: &str| StateError::WrongKind {
            key: key.into(),
            expected: "counter",
        };
        let result = first_error(&groups, vec![Err(wrong("late")), Err(wrong("early"))]);
        assert!(matches!(result, Err(StateError::WrongKind { key, .. }) if key == "early"));
        assert!(first_error(&groups, vec![Ok(vec![]), Ok(vec![])]).is_ok());
    }

    #[test]
    fn cluster_slots_reply_gives_each_ranges_primary() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7004),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7002),
            ]),
        ]);
        assert_eq!(
            primary_addresses(reply).unwrap(),
            vec![
                ("127.0.0.1".to_owned(), 7001),
                ("10.0.0.2".to_owned(), 7002)
            ]
        );
    }
}
