//! The backends of one aggregation are called at the same time: two that each take 300 ms
//! give an answer in about 300 ms, not 600.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use std::time::{Duration, Instant};

use aggregate_support::{Fixed, gateway, text};
use serde_json::json;
use tollgate_tests::get;

#[tokio::test(flavor = "multi_thread")]
async fn two_300_ms_backends_answer_in_well_under_600_ms() {
    let delay = Duration::from_millis(300);
    let a = Fixed::slow_json(json!({ "a": 1 }), delay).await;
    let b = Fixed::slow_json(json!({ "b": 2 }), delay).await;
    let gw = gateway(
        &[("a", a.target()), ("b", b.target())],
        &["a", "b"],
        r#"merge = "deep"
backends = [
  { name = "a", upstream = "a", path = "/a" },
  { name = "b", upstream = "b", path = "/b" },
]"#,
        ("", &[]),
        "",
    )
    .await;

    // The first request also warms the plugin's pool and the connections; measure the next ones.
    let _ = get(&gw.url("/both"), &[]).await;
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let reply = get(&gw.url("/both"), &[]).await;
        took.push(started.elapsed());
        assert_eq!(reply.status, 200, "{}", text(&reply));
        assert_eq!(reply.json(), json!({ "a": 1, "b": 2 }));
    }
    let best = *took.iter().min().unwrap();
    eprintln!("two 300 ms backends: {took:?}");
    assert!(best >= delay, "{took:?}");
    // Sequential calls would take 600 ms; the margin covers a loaded machine.
    assert!(best < Duration::from_millis(480), "{took:?}");
}
