//! An operator moves the shared state from one Redis to a Redis Cluster (`[state] backend =
//! "redis-cluster"`): plugins must not notice. A real three-node cluster (three `redis-server`
//! processes started by the test) runs the same scenarios as the in-process backend and the
//! single Redis: counters with TTLs, values, token buckets under concurrency, locks and caches,
//! and `incr_many` batches whose keys land in different hash slots on different nodes (still
//! exact, and a key of another kind still fails the batch with no effect). The admin usage view
//! (`scan_counters`) finds counters on every primary. A cluster that does not answer fails each
//! call within the timeout.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::runtime::{
    MemoryState, RedisClusterOptions, RedisOptions, RedisState, StateBackend, StateError,
    TokenBucket,
};
use tollgate_tests::redis_cluster::RedisCluster;

use super::state_incr_many_batches_counters::counters_in_batches;
use super::state_locks_and_values_memory_and_redis::locks_and_values;

fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tollgate-test:{what}:{}:{nanos}:", std::process::id())
}

fn on_cluster(cluster: &RedisCluster, prefix: &str) -> Arc<dyn StateBackend> {
    Arc::new(
        RedisState::cluster(RedisClusterOptions {
            nodes: cluster.urls(),
            timeout: Duration::from_secs(2),
            key_prefix: prefix.to_owned(),
        })
        .unwrap(),
    )
}

/// Counters, values and token buckets: what every backend must do alike.
async fn counters_values_and_buckets(state: Arc<dyn StateBackend>, backend: &str) {
    let ms = |n| Some(Duration::from_millis(n));
    // A counter takes its TTL when created; later increments keep it.
    assert_eq!(state.incr("b:n", 5, ms(300)).await.unwrap(), 5, "{backend}");
    assert_eq!(state.incr("b:n", -2, ms(60_000)).await.unwrap(), 3);
    assert_eq!(state.get_counter("b:n").await.unwrap(), 3, "{backend}");
    assert_eq!(state.get("b:n").await.unwrap().as_deref(), Some("3"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        state.get_counter("b:n").await.unwrap(),
        0,
        "{backend}: expired"
    );

    // Values with and without a TTL; delete; a value is not a counter.
    state.set("b:v", "hello", ms(300)).await.unwrap();
    state.set("b:keep", "kept", None).await.unwrap();
    assert_eq!(state.get("b:v").await.unwrap().as_deref(), Some("hello"));
    let err = state.incr("b:keep", 1, None).await.unwrap_err();
    assert!(
        matches!(&err, StateError::WrongKind { key, expected: "counter" } if key == "b:keep"),
        "{backend}: {err:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(state.get("b:v").await.unwrap(), None, "{backend}: expired");
    state.delete("b:keep").await.unwrap();
    assert_eq!(state.get("b:keep").await.unwrap(), None, "{backend}");

    // A token bucket of 20, no refill worth counting: 60 concurrent takes, exactly 20 granted.
    let bucket = TokenBucket::new(20, 0.01).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let state = Arc::clone(&state);
        tasks.push(tokio::spawn(async move {
            state
                .take("b:bucket", bucket, 1, Duration::ZERO)
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        let outcome = t.await.unwrap();
        if outcome.granted {
            granted += 1;
        } else {
            assert!(outcome.wait_ms > 0, "{backend}: {outcome:?}");
        }
    }
    assert_eq!(granted, 20, "{backend}");
    let fresh = state.take("b:other", bucket, 1, Duration::ZERO).await;
    assert!(fresh.unwrap().granted, "{backend}: another bucket is full");
    state.incr("b:count", 1, None).await.unwrap();
    let err = state
        .take("b:count", bucket, 1, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StateError::WrongKind {
                expected: "token bucket",
                ..
            }
        ),
        "{backend}: {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_backend_counts_values_and_buckets() {
    counters_values_and_buckets(Arc::new(MemoryState::new()), "memory").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_backend_counts_values_and_buckets() {
    let state = RedisState::new(RedisOptions {
        url: "redis://127.0.0.1:6379".into(),
        timeout: Duration::from_secs(2),
        key_prefix: unique("basics"),
    })
    .unwrap();
    counters_values_and_buckets(Arc::new(state), "redis").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cluster_backend_behaves_like_one_redis() {
    let cluster = RedisCluster::start().await;
    let prefix = unique("cluster");
    counters_values_and_buckets(on_cluster(&cluster, &format!("{prefix}basics:")), "cluster").await;
    locks_and_values(on_cluster(&cluster, &format!("{prefix}locks:")), "cluster").await;
    let batches = format!("{prefix}batches:");
    let state = on_cluster(&cluster, &batches);
    counters_in_batches(Arc::clone(&state), "cluster").await;

    // The batches' keys are spread over every node (so over several slots)...
    for &port in cluster.ports() {
        let keys = cluster.cli(port, &["--scan", "--pattern", &format!("{batches}*")]);
        assert!(
            keys.lines().count() > 0,
            "node {port} holds none of the keys: the batches never crossed slots"
        );
    }
    // ...and the admin usage view finds them on every primary.
    let mut found = state.scan_counters("p:c").await.unwrap();
    found.sort();
    let mut want: Vec<(String, i64)> = (0..12).map(|i| (format!("p:c{i}"), 200)).collect();
    want.sort();
    assert_eq!(found, want);
}

/// No node answers: the gateway still starts (the connection is opened lazily), and every call
/// fails as a backend error within the timeout, for each plugin's `on_state_error` to decide.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_cluster_fails_within_the_timeout() {
    let nodes = vec![
        format!("redis://{}", tollgate_tests::dead_port().await),
        format!("redis://{}", tollgate_tests::dead_port().await),
    ];
    let state = RedisState::cluster(RedisClusterOptions {
        nodes,
        timeout: Duration::from_millis(200),
        key_prefix: unique("down"),
    })
    .unwrap();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let err = state.incr("n", 1, None).await.unwrap_err();
        assert!(err.is_backend(), "{err:?}");
        let err = state.incr_many(&[("a", 1, None), ("b", 1, None)]).await;
        assert!(err.unwrap_err().is_backend());
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            started.elapsed()
        );
    }
}
