//! The Redis state backend against the real Redis on 127.0.0.1:6379 (each test under its own key
//! prefix): same answers as the memory backend, exact under concurrency, bounded when Redis is
//! gone.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tollgate::runtime::{
    MemoryState, RedisOptions, RedisState, StateBackend, StateError, TokenBucket,
};

fn prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tollgate-test:{test}:{}:{nanos}:", std::process::id())
}

fn redis(test: &str) -> RedisState {
    RedisState::new(RedisOptions {
        url: "redis://127.0.0.1:6379".into(),
        timeout: Duration::from_millis(500),
        key_prefix: prefix(test),
    })
    .unwrap()
}

fn bucket(capacity: u32, rate: f64) -> TokenBucket {
    TokenBucket::new(capacity, rate).unwrap()
}

#[tokio::test]
async fn counters_values_and_ttl() {
    let s = redis("kv");
    assert_eq!(
        s.incr("p:c", 2, Some(Duration::from_millis(300)))
            .await
            .unwrap(),
        2
    );
    // The TTL is set at creation only: a later incr with another TTL does not extend it.
    assert_eq!(
        s.incr("p:c", 3, Some(Duration::from_secs(60)))
            .await
            .unwrap(),
        5
    );
    assert_eq!(s.get_counter("p:c").await.unwrap(), 5);
    assert_eq!(s.get("p:c").await.unwrap(), Some("5".to_owned()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.get_counter("p:c").await.unwrap(), 0);

    s.set("p:v", "hello", None).await.unwrap();
    assert_eq!(s.get("p:v").await.unwrap(), Some("hello".to_owned()));
    assert!(matches!(
        s.incr("p:v", 1, None).await,
        Err(StateError::WrongKind { .. })
    ));
    assert!(matches!(
        s.get_counter("p:v").await,
        Err(StateError::WrongKind { .. })
    ));
    assert!(matches!(
        s.take("p:v", bucket(1, 1.0), 1, Duration::ZERO).await,
        Err(StateError::WrongKind { .. })
    ));
    s.delete("p:v").await.unwrap();
    assert_eq!(s.get("p:v").await.unwrap(), None);
    s.set("p:t", "x", Some(Duration::from_millis(50)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(s.get("p:t").await.unwrap(), None);
}

#[tokio::test]
async fn take_matches_the_memory_backend() {
    let r = redis("take");
    let m = MemoryState::new();
    let b = bucket(3, 0.01); // 100 s per token: no refill during the test
    for backend in [&r as &dyn StateBackend, &m as &dyn StateBackend] {
        let mut seen = Vec::new();
        for _ in 0..4 {
            let o = backend.take("p:b", b, 1, Duration::ZERO).await.unwrap();
            seen.push((o.granted, o.remaining));
        }
        assert_eq!(seen, vec![(true, 2), (true, 1), (true, 0), (false, 0)]);
        let refused = backend.take("p:b", b, 1, Duration::ZERO).await.unwrap();
        assert!((99_000..=100_000).contains(&refused.wait_ms), "{refused:?}");
        assert!(
            (299_000..=300_000).contains(&refused.reset_ms),
            "{refused:?}"
        );
        // Reserved within max_wait: granted with the wait, in debt afterwards.
        let reserved = backend
            .take("p:b", b, 1, Duration::from_secs(200))
            .await
            .unwrap();
        assert!(
            reserved.granted && reserved.wait_ms > 99_000,
            "{reserved:?}"
        );
        assert_eq!(reserved.remaining, 0);
    }
    assert!(matches!(
        r.incr("p:b", 1, None).await,
        Err(StateError::WrongKind { .. })
    ));
}

#[tokio::test]
async fn take_refills_and_expires_when_full() {
    let r = redis("refill");
    let b = bucket(2, 20.0); // one token per 50 ms
    assert!(r.take("p:b", b, 2, Duration::ZERO).await.unwrap().granted);
    assert!(!r.take("p:b", b, 1, Duration::ZERO).await.unwrap().granted);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(r.take("p:b", b, 1, Duration::ZERO).await.unwrap().granted);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        r.get("p:b").await.unwrap(),
        None,
        "full bucket's key expired"
    );
}

#[tokio::test]
async fn take_and_incr_are_exact_under_concurrency() {
    let r = Arc::new(redis("concurrent"));
    let b = bucket(100, 0.001);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let r = Arc::clone(&r);
        tasks.push(tokio::spawn(async move {
            let mut granted = 0;
            for _ in 0..50 {
                if r.take("p:b", b, 1, Duration::ZERO).await.unwrap().granted {
                    granted += 1;
                }
                r.incr("p:n", 1, Some(Duration::from_secs(60)))
                    .await
                    .unwrap();
            }
            granted
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap();
    }
    assert_eq!(granted, 100);
    assert_eq!(r.get_counter("p:n").await.unwrap(), 400);
}

#[tokio::test]
async fn scan_counters_returns_full_keys_without_the_redis_prefix() {
    let r = redis("scan");
    for (k, n) in [("quota:alice", 3), ("quota:bob", 5), ("other:x", 1)] {
        r.incr(k, n, Some(Duration::from_secs(60))).await.unwrap();
    }
    r.set("quota:text", "hello", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    r.take("quota:bucket", bucket(5, 1.0), 1, Duration::ZERO)
        .await
        .unwrap();
    let mut found = r.scan_counters("quota:").await.unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![("quota:alice".to_owned(), 3), ("quota:bob".to_owned(), 5)]
    );
}

#[tokio::test]
async fn unreachable_redis_fails_within_the_timeout() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = RedisState::new(RedisOptions {
        url: format!("redis://127.0.0.1:{port}"),
        timeout: Duration::from_millis(50),
        key_prefix: prefix("down"),
    })
    .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let err = r.incr("p:c", 1, None).await.unwrap_err();
        assert!(err.is_backend(), "{err}");
        assert!(started.elapsed() < Duration::from_millis(500));
        let err = r
            .take("p:b", bucket(1, 1.0), 1, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(err.is_backend(), "{err}");
    }
}

/// Round-trip cost per call on this machine (printed; run with `--nocapture`).
#[tokio::test]
async fn round_trip_cost() {
    let r = redis("cost");
    let b = bucket(1_000_000, 1000.0);
    let n = 500;
    r.incr("p:warm", 1, None).await.unwrap();
    let started = Instant::now();
    for _ in 0..n {
        r.take("p:b", b, 1, Duration::ZERO).await.unwrap();
    }
    let take = started.elapsed() / n;
    let started = Instant::now();
    for _ in 0..n {
        r.incr("p:n", 1, Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    let incr = started.elapsed() / n;
    println!("redis round trip, sequential: take {take:?}, incr {incr:?}");
    r.delete("p:b").await.unwrap();
    r.delete("p:n").await.unwrap();
    r.delete("p:warm").await.unwrap();
}
