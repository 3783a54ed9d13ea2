//! A load balancer polls `/admin/ready`: 200 while the gateway serves, 503 as soon as shutdown
//! starts and while in-flight requests drain (the admin API stays up until the drain ends).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, Upstream, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_while_draining() {
    let upstream = Upstream::slow("u", Duration::from_secs(3)).await;
    let mut gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "u"
"#,
        upstream.target()
    ))
    .await;
    let ready_url = format!("http://{}/admin/ready", gateway.admin.unwrap());
    let ready = get(&ready_url, &[]).await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json()["status"], "ready");

    // A slow request in flight, then shutdown.
    let url = gateway.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let running = gateway.running.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());

    let deadline = Instant::now() + Duration::from_secs(2);
    let draining = loop {
        let reply = get(&ready_url, &[]).await;
        if reply.status == 503 {
            break reply;
        }
        assert!(Instant::now() < deadline, "still {reply:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(draining.json()["status"], "not_ready");
    assert!(!stopping.is_finished(), "the drain should still be running");

    // The in-flight request completes; then everything stops.
    assert_eq!(in_flight.await.unwrap().status, 200);
    tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .unwrap()
        .unwrap();
}
