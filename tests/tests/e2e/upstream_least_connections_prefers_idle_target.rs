//! With `balance = "least-connections"`, while one target holds a slow request, new requests go
//! to the idle target (round-robin would send every other one to the busy target).

#![allow(clippy::unwrap_used)]

use crate::upstream_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tollgate_tests::{Gateway, Upstream, echo_response, get};
use upstream_support::{config, eventually, spread, upstreams};

/// A target that holds `/hold` requests until `gate` gets a permit, recording who held one.
async fn target(
    name: &'static str,
    gate: Arc<Semaphore>,
    held: Arc<Mutex<Vec<&'static str>>>,
) -> Upstream {
    Upstream::start(Arc::new(move |req| {
        let (gate, held) = (gate.clone(), held.clone());
        Box::pin(async move {
            if req.uri().path() == "/hold" {
                held.lock().unwrap().push(name);
                let _permit = gate.acquire().await.unwrap();
            }
            echo_response(name, &req)
        })
    }))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn new_requests_go_to_the_idle_target() {
    let gate = Arc::new(Semaphore::new(0));
    let held = Arc::new(Mutex::new(Vec::new()));
    let a = target("a", gate.clone(), held.clone()).await;
    let b = target("b", gate.clone(), held.clone()).await;
    let gateway = Gateway::start(&config(&format!(
        r#"targets = ["{}", "{}"]
balance = "least-connections"
request_timeout_ms = 30000"#,
        a.target(),
        b.target()
    )))
    .await;

    let slow_url = gateway.url("/hold");
    let slow = tokio::spawn(async move { get(&slow_url, &[]).await });
    eventually(
        Duration::from_secs(5),
        "the slow request reached a target",
        || async { !held.lock().unwrap().is_empty() },
    )
    .await;
    let busy = held.lock().unwrap()[0];
    let idle = if busy == "a" { "b" } else { "a" };

    // The admin API shows the held request in flight on the busy target.
    let report = upstreams(&gateway).await;
    let targets = report["upstreams"]["app"]["targets"]
        .as_array()
        .unwrap()
        .clone();
    let in_flight: Vec<u64> = targets
        .iter()
        .map(|t| t["in_flight"].as_u64().unwrap())
        .collect();
    assert_eq!(in_flight.iter().sum::<u64>(), 1, "{report}");

    let served = spread(&gateway, "/fast", 12).await;
    assert!(served.iter().all(|s| s == idle), "busy {busy}: {served:?}");

    // Released, the slow request completes and both targets are idle again.
    gate.add_permits(1);
    let reply = slow.await.unwrap();
    assert_eq!(reply.status, 200);
    eventually(
        Duration::from_secs(5),
        "in-flight counts back to 0",
        || async {
            let report = upstreams(&gateway).await;
            report["upstreams"]["app"]["targets"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["in_flight"] == 0)
        },
    )
    .await;
    let served = spread(&gateway, "/fast", 10).await;
    assert!(served.iter().any(|s| s == busy), "{served:?}");
    gateway.shutdown().await;
}
