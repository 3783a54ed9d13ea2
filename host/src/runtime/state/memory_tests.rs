//! Unit tests of the in-process backend (`memory.rs`): exactness under concurrency, expiry,
//! kinds, token buckets, the caps and batched counters.

use super::*;

#[tokio::test]
async fn counters_are_exact_under_concurrency() {
    let state = std::sync::Arc::new(MemoryState::new());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let state = std::sync::Arc::clone(&state);
        tasks.push(tokio::spawn(async move {
            for _ in 0..1000 {
                let _ = state.incr("p:k", 1, None).await;
            }
        }));
    }
    for t in tasks {
        assert!(t.await.is_ok());
    }
    assert_eq!(state.get_counter("p:k").await.ok(), Some(8000));
}

#[tokio::test]
async fn ttl_expires_and_kinds_are_checked() {
    let state = MemoryState::new();
    assert_eq!(
        state
            .incr("c", 2, Some(Duration::from_millis(20)))
            .await
            .ok(),
        Some(2)
    );
    assert_eq!(state.get("c").await.ok(), Some(Some("2".to_owned())));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(state.get_counter("c").await.ok(), Some(0));
    assert!(state.set("v", "x", None).await.is_ok());
    assert!(matches!(
        state.incr("v", 1, None).await,
        Err(StateError::WrongKind { .. })
    ));
    assert!(state.delete("v").await.is_ok());
    assert_eq!(state.get("v").await.ok(), Some(None));
}

fn bucket(capacity: u32, rate: f64) -> TokenBucket {
    match TokenBucket::new(capacity, rate) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn take_is_exact_under_concurrency() {
    // 100 tokens refilling at one per 1000 s: 800 concurrent takes, exactly 100 granted.
    let state = std::sync::Arc::new(MemoryState::new());
    let b = bucket(100, 0.001);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let state = std::sync::Arc::clone(&state);
        tasks.push(tokio::spawn(async move {
            let mut granted = 0;
            for _ in 0..100 {
                if let Ok(o) = state.take("p:b", b, 1, Duration::ZERO).await {
                    granted += u32::from(o.granted);
                }
            }
            granted
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap_or(0);
    }
    assert_eq!(granted, 100);
}

#[tokio::test]
async fn take_refills_and_the_key_expires_when_full() {
    let state = MemoryState::new();
    let b = bucket(2, 50.0); // one token every 20 ms
    let first = state.take("b", b, 2, Duration::ZERO).await.ok();
    assert_eq!(first.map(|o| (o.granted, o.remaining)), Some((true, 0)));
    let refused = state.take("b", b, 1, Duration::ZERO).await.ok();
    assert_eq!(refused.map(|o| o.granted), Some(false));
    assert!(refused.is_some_and(|o| (1..=20).contains(&o.wait_ms)));
    // Reserved with a wait, then full again after ~60 ms and the key is gone.
    let waited = state.take("b", b, 1, Duration::from_millis(100)).await.ok();
    assert!(waited.is_some_and(|o| o.granted && o.wait_ms > 0));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(state.get("b").await.ok(), Some(None));
    let again = state.take("b", b, 1, Duration::ZERO).await.ok();
    assert_eq!(again.map(|o| (o.granted, o.remaining)), Some((true, 1)));
    assert!(state.incr("b", 1, None).await.is_err());
    assert!(state.set("c", "x", None).await.is_ok());
    assert!(state.take("c", b, 1, Duration::ZERO).await.is_err());
    assert!(matches!(
        TokenBucket::new(0, 1.0),
        Err(StateError::Invalid(_))
    ));
}

#[tokio::test]
async fn bounded_in_entries_and_bytes() {
    let state = MemoryState::with_limits(1600, 1 << 20);
    let big = "x".repeat(10 * 1024);
    for i in 0..2000 {
        assert!(state.set(&format!("k{i}"), &big, None).await.is_ok());
    }
    let (entries, bytes) = state.usage();
    assert!(bytes <= 1 << 20, "{bytes}");
    assert!(entries <= 1600, "{entries}");
    assert!(state.evictions() > 0);
    // Counters still count exactly while the store evicts others.
    for _ in 0..5 {
        assert!(state.incr("live", 1, None).await.is_ok());
    }
    assert_eq!(state.get_counter("live").await.ok(), Some(5));
}

#[tokio::test]
async fn scan_counters_lists_live_counters_under_a_prefix() {
    let state = MemoryState::new();
    for (k, n) in [("quota:alice", 3), ("quota:bob", 5), ("other:alice", 7)] {
        assert!(state.incr(k, n, None).await.is_ok());
    }
    assert!(
        state
            .incr("quota:gone", 1, Some(Duration::from_millis(1)))
            .await
            .is_ok()
    );
    assert!(state.set("quota:text", "x", None).await.is_ok());
    assert!(
        state
            .take("quota:bucket", bucket(5, 1.0), 1, Duration::ZERO)
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut found = state.scan_counters("quota:").await.unwrap_or_default();
    found.sort();
    assert_eq!(
        found,
        vec![("quota:alice".to_owned(), 3), ("quota:bob".to_owned(), 5)]
    );
}

#[tokio::test]
async fn incr_many_applies_in_order_or_not_at_all() {
    let state = MemoryState::new();
    let ttl = Some(Duration::from_millis(40));
    let ops = [("a", 2, ttl), ("b", 5, None), ("a", 3, None)];
    assert_eq!(state.incr_many(&ops).await.ok(), Some(vec![2, 5, 5]));
    assert_eq!(state.incr_many(&[]).await.ok(), Some(vec![]));
    // A value among the keys: nothing is changed, the error names it.
    assert!(state.set("v", "x", None).await.is_ok());
    let err = state.incr_many(&[("b", 1, None), ("v", 1, None)]).await;
    assert!(matches!(err, Err(StateError::WrongKind { ref key, .. }) if key == "v"));
    assert_eq!(state.get_counter("b").await.ok(), Some(5));
    // The TTL is set when the element creates the counter (by the first `a`).
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(state.get_counter("a").await.ok(), Some(0));
    assert_eq!(state.get_counter("b").await.ok(), Some(5));
}

#[tokio::test]
async fn incr_many_is_exact_under_concurrency_across_shards() {
    let state = std::sync::Arc::new(MemoryState::new());
    let keys: Vec<String> = (0..40).map(|i| format!("p:k{i}")).collect();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let state = std::sync::Arc::clone(&state);
        let mut keys = keys.clone();
        keys.rotate_left(t * 5); // different orders: locks are still taken in shard order
        tasks.push(tokio::spawn(async move {
            let ops: Vec<(&str, i64, Option<Duration>)> =
                keys.iter().map(|k| (k.as_str(), 1, None)).collect();
            for _ in 0..200 {
                let _ = state.incr_many(&ops).await;
            }
        }));
    }
    for t in tasks {
        assert!(t.await.is_ok());
    }
    for k in &keys {
        assert_eq!(state.get_counter(k).await.ok(), Some(1600), "{k}");
    }
}
