//! [`WriteBehind`] over the in-process backend (what it sends, when, and what a call on a
//! pending key sees) and over a Redis that does not answer (what it keeps).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use super::{ENTRY_BYTES, MAX_PENDING_BYTES, MAX_PENDING_KEYS, WriteBehind};
use crate::runtime::state::{MemoryState, RedisOptions, RedisState, StateBackend};

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

/// A wrapper that never flushes on its own during a test (a one-hour interval).
fn wrapped() -> (Arc<MemoryState>, Arc<WriteBehind>) {
    let memory = Arc::new(MemoryState::new());
    let inner: Arc<dyn StateBackend> = memory.clone();
    (memory, WriteBehind::new(inner, Duration::from_secs(3600)))
}

#[tokio::test]
async fn add_many_sums_per_key_and_sends_on_flush() {
    let (memory, wb) = wrapped();
    for _ in 0..3 {
        wb.add_many(&[("m:requests", 1, HOUR), ("m:bytes", 100, HOUR)])
            .await
            .unwrap();
    }
    assert_eq!(wb.pending_keys(), 2);
    assert_eq!(
        memory.get_counter("m:requests").await.unwrap(),
        0,
        "not sent yet"
    );
    wb.flush().await.unwrap();
    assert_eq!(wb.pending_keys(), 0);
    assert_eq!(memory.get_counter("m:requests").await.unwrap(), 3);
    assert_eq!(memory.get_counter("m:bytes").await.unwrap(), 300);
}

#[tokio::test]
async fn calls_on_a_pending_key_see_its_delta_first() {
    let (memory, wb) = wrapped();
    wb.add_many(&[("k", 5, None), ("other", 1, None)])
        .await
        .unwrap();
    // `incr` returns the value with the pending 5 in it.
    assert_eq!(wb.incr("k", 1, None).await.unwrap(), 6);
    assert_eq!(wb.pending_keys(), 1, "only `k` was sent");
    wb.add_many(&[("k", 2, None)]).await.unwrap();
    assert_eq!(wb.get_counter("k").await.unwrap(), 8);
    wb.add_many(&[("k", 2, None)]).await.unwrap();
    assert_eq!(wb.get("k").await.unwrap().as_deref(), Some("10"));
    wb.add_many(&[("k", 2, None)]).await.unwrap();
    assert_eq!(wb.incr_many(&[("k", 0, None)]).await.unwrap(), vec![12]);
    assert_eq!(memory.get_counter("other").await.unwrap(), 0);
}

#[tokio::test]
async fn delete_drops_the_pending_delta() {
    let (memory, wb) = wrapped();
    wb.incr("gone", 4, None).await.unwrap();
    wb.add_many(&[("gone", 3, None)]).await.unwrap();
    wb.delete("gone").await.unwrap();
    wb.flush().await.unwrap();
    assert_eq!(memory.get_counter("gone").await.unwrap(), 0);
    assert_eq!(
        memory.get("gone").await.unwrap(),
        None,
        "a flush did not bring it back"
    );
}

#[tokio::test]
async fn scan_counters_flushes_first() {
    let (_memory, wb) = wrapped();
    wb.add_many(&[("usage:a", 2, HOUR), ("usage:b", 3, HOUR)])
        .await
        .unwrap();
    let mut seen = wb.scan_counters("usage:").await.unwrap();
    seen.sort();
    assert_eq!(seen, vec![("usage:a".into(), 2), ("usage:b".into(), 3)]);
}

#[tokio::test]
async fn a_key_of_another_kind_loses_only_its_own_update() {
    let (memory, wb) = wrapped();
    memory.set("text", "hello", None).await.unwrap();
    wb.add_many(&[("n1", 1, None), ("n2", 2, None)])
        .await
        .unwrap();
    // Put the value key's update in the same batch without `settle` sending it first.
    assert!(wb.buffer.add(
        "text",
        super::Pending {
            delta: 1,
            expires_at: None
        }
    ));
    wb.flush().await.unwrap();
    assert_eq!(memory.get_counter("n1").await.unwrap(), 1);
    assert_eq!(memory.get_counter("n2").await.unwrap(), 2);
    assert_eq!(memory.get("text").await.unwrap().as_deref(), Some("hello"));
    assert_eq!(wb.pending_keys(), 0);
}

#[tokio::test]
async fn the_ttl_runs_from_the_add_not_from_the_flush() {
    let (memory, wb) = wrapped();
    wb.add_many(&[("short", 1, Some(Duration::from_millis(150)))])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    wb.flush().await.unwrap();
    assert_eq!(memory.get_counter("short").await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        memory.get_counter("short").await.unwrap(),
        0,
        "expired 150 ms after the add"
    );
}

#[tokio::test]
async fn the_interval_flushes_and_dropping_the_wrapper_flushes_the_rest() {
    let memory = Arc::new(MemoryState::new());
    let inner: Arc<dyn StateBackend> = memory.clone();
    let wb = WriteBehind::new(Arc::clone(&inner), Duration::from_millis(20));
    wb.add_many(&[("tick", 1, None)]).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while memory.get_counter("tick").await.unwrap() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the interval never flushed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let slow = WriteBehind::new(inner, Duration::from_secs(3600));
    slow.add_many(&[("last", 7, None)]).await.unwrap();
    drop(slow);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while memory.get_counter("last").await.unwrap() != 7 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the last flush never came"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_full_buffer_waits_for_the_backend_instead_of_growing() {
    let (memory, wb) = wrapped();
    for chunk in (0..MAX_PENDING_KEYS).collect::<Vec<_>>().chunks(64) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("k{i}")).collect();
        let ops: Vec<_> = keys.iter().map(|k| (k.as_str(), 1, None)).collect();
        wb.add_many(&ops).await.unwrap();
    }
    assert_eq!(wb.pending_keys(), MAX_PENDING_KEYS);
    // A new key does not fit: applied at once. A pending key still merges.
    wb.add_many(&[("overflow", 5, None), ("k0", 1, None)])
        .await
        .unwrap();
    assert_eq!(wb.pending_keys(), MAX_PENDING_KEYS);
    assert_eq!(memory.get_counter("overflow").await.unwrap(), 5);
    wb.flush().await.unwrap();
    assert_eq!(
        memory.get_counter("k0").await.unwrap(),
        2,
        "k0 merged in the buffer"
    );
}

#[tokio::test]
async fn sums_survive_a_backend_that_does_not_answer() {
    // A real Redis client pointed at a port nothing listens on.
    let redis = RedisState::new(RedisOptions {
        url: "redis://127.0.0.1:1".into(),
        timeout: Duration::from_millis(50),
        key_prefix: "wb-test:".into(),
    })
    .unwrap();
    let wb = WriteBehind::new(Arc::new(redis), Duration::from_secs(3600));
    wb.add_many(&[("a", 1, None), ("b", 2, None)])
        .await
        .unwrap();
    wb.add_many(&[("a", 1, None)]).await.unwrap();
    wb.flush().await.unwrap();
    assert_eq!(wb.pending_keys(), 2, "kept for the next flush");
    let settled = wb.get_counter("a").await;
    assert!(settled.is_err_and(|e| e.is_backend()));
    assert_eq!(wb.pending_keys(), 2, "the failed settle put `a` back");
}

#[tokio::test]
async fn long_keys_are_bounded_by_bytes_not_only_by_count() {
    let (memory, wb) = wrapped();
    let long = |i: usize| format!("{i:0>1000}");
    let fits = MAX_PENDING_BYTES / (1000 + ENTRY_BYTES);
    for i in 0..fits {
        wb.add_many(&[(long(i).as_str(), 1, None)]).await.unwrap();
    }
    assert_eq!(wb.pending_keys(), fits);
    assert!(
        fits < MAX_PENDING_KEYS,
        "the byte bound is the one that holds"
    );
    // One more long key does not fit: applied at once instead.
    let extra = long(fits);
    wb.add_many(&[(extra.as_str(), 4, None)]).await.unwrap();
    assert_eq!(wb.pending_keys(), fits);
    assert_eq!(memory.get_counter(&extra).await.unwrap(), 4);
    wb.flush().await.unwrap();
    assert_eq!(
        wb.buffer.bytes.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(memory.get_counter(&long(0)).await.unwrap(), 1);
}
