//! A plugin author builds a lock and a cache on the state backend: set-if-absent with a TTL,
//! compare-and-set (and compare-and-delete), renewing a TTL, binary values and the size limits.
//! The same scenario runs against the in-process backend and a real Redis on 127.0.0.1:6379,
//! which must behave the same.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::runtime::{MemoryState, RedisOptions, RedisState, StateBackend};

fn redis() -> Arc<dyn StateBackend> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Arc::new(
        RedisState::new(RedisOptions {
            url: "redis://127.0.0.1:6379".into(),
            timeout: Duration::from_secs(2),
            key_prefix: format!("tollgate-test:state-v2:{}:{nanos}:", std::process::id()),
        })
        .unwrap(),
    )
}

pub(super) async fn locks_and_values(state: Arc<dyn StateBackend>, backend: &str) {
    let ms = |n| Some(Duration::from_millis(n));
    // set-if-absent: exactly one of many concurrent callers takes the lock.
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let state = Arc::clone(&state);
        tasks.push(tokio::spawn(async move {
            state
                .set_if_absent("p:lock", &[i], ms(10_000))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "{backend}: one lock holder");
    let holder = state.get_bytes("p:lock").await.unwrap().unwrap();
    assert_eq!(holder.len(), 1, "{backend}");

    // compare-and-set: only the holder's value matches; `None` deletes (release).
    let other = [holder[0].wrapping_add(1)];
    assert!(
        !state
            .compare_and_set("p:lock", &other, None, None)
            .await
            .unwrap(),
        "{backend}"
    );
    assert!(
        state.get_bytes("p:lock").await.unwrap().is_some(),
        "{backend}: still held"
    );
    assert!(
        state
            .compare_and_set("p:lock", &holder, Some(b"renewed"), ms(10_000))
            .await
            .unwrap()
    );
    assert_eq!(
        state.get_bytes("p:lock").await.unwrap().as_deref(),
        Some(&b"renewed"[..])
    );
    assert!(
        state
            .compare_and_set("p:lock", b"renewed", None, None)
            .await
            .unwrap(),
        "{backend}"
    );
    assert_eq!(
        state.get_bytes("p:lock").await.unwrap(),
        None,
        "{backend}: released"
    );
    assert!(
        !state
            .compare_and_set("p:lock", b"renewed", None, None)
            .await
            .unwrap(),
        "{backend}: absent never matches"
    );
    assert!(
        state.set_if_absent("p:lock", b"next", None).await.unwrap(),
        "{backend}: free again"
    );

    // A lock with a TTL expires; `expire` renews a live key and reports an absent one.
    assert!(state.set_if_absent("p:ttl", b"x", ms(150)).await.unwrap());
    assert!(
        state.expire("p:ttl", ms(600)).await.unwrap(),
        "{backend}: renewed"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        state.get_bytes("p:ttl").await.unwrap().is_some(),
        "{backend}: renewal held"
    );
    assert!(
        !state.set_if_absent("p:ttl", b"y", None).await.unwrap(),
        "{backend}"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        state.get_bytes("p:ttl").await.unwrap(),
        None,
        "{backend}: expired"
    );
    assert!(
        state
            .set_if_absent("p:ttl", b"y", ms(60_000))
            .await
            .unwrap(),
        "{backend}: taken after expiry"
    );
    assert!(
        !state.expire("p:gone", ms(100)).await.unwrap(),
        "{backend}: absent key"
    );
    // expire with no TTL makes the key permanent.
    assert!(state.expire("p:ttl", None).await.unwrap());

    // Binary values round-trip exactly, including NUL, newlines and invalid UTF-8.
    let bytes: Vec<u8> = (0..=255u8).chain([0, b'\n', 0xff]).collect();
    state.set_bytes("p:bin", &bytes, None).await.unwrap();
    assert_eq!(
        state.get_bytes("p:bin").await.unwrap(),
        Some(bytes.clone()),
        "{backend}"
    );
    assert!(
        state
            .compare_and_set("p:bin", &bytes, Some(b"v2"), None)
            .await
            .unwrap()
    );
    // A counter compares as its decimal text, in both backends.
    state.incr("p:n", 42, None).await.unwrap();
    assert_eq!(
        state.get_bytes("p:n").await.unwrap().as_deref(),
        Some(&b"42"[..])
    );
    assert!(
        state
            .compare_and_set("p:n", b"42", Some(b"done"), None)
            .await
            .unwrap(),
        "{backend}"
    );
    // Text written by the 0.1 `set` reads back as bytes.
    state.set("p:text", "héllo", None).await.unwrap();
    assert_eq!(
        state.get_bytes("p:text").await.unwrap().as_deref(),
        Some("héllo".as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_backend_builds_locks_and_caches() {
    locks_and_values(Arc::new(MemoryState::new()), "memory").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_backend_builds_locks_and_caches() {
    locks_and_values(redis(), "redis").await;
}
