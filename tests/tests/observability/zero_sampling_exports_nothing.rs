//! `sampling_ratio = 0.0` keeps no new trace: requests are served, nothing reaches the collector,
//! and the upstream is told the trace is not sampled (flags `00`). A caller's sampled trace is
//! still kept (parent-based).

use std::time::Duration;

use tollgate_tests::{Gateway, Upstream, get};

use super::support::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_sampling_exports_nothing() {
    let receiver = Receiver::start(Duration::ZERO).await;
    let upstream = Upstream::echo("u").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[telemetry]
endpoint = "{endpoint}"
sampling_ratio = 0.0

[upstreams.u]
targets = ["{target}"]

[[routes]]
name = "r"
path_prefix = "/"
upstream = "u"
"#,
        endpoint = receiver.endpoint(),
        target = upstream.target(),
    ))
    .await;

    for _ in 0..50 {
        let reply = get(&gateway.url("/x"), &[]).await;
        assert_eq!(reply.status, 200);
        let sent = reply.json()["headers"]["traceparent"][0]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(sent.ends_with("-00"), "{sent}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*receiver.exports.lock().unwrap(), 0);
    assert!(receiver.spans.lock().unwrap().is_empty());

    // The caller sampled its trace: the gateway follows it.
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(
        get(&gateway.url("/x"), &[("traceparent", parent)])
            .await
            .status,
        200
    );
    let spans = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        spans.len(),
        2,
        "server span and upstream attempt: {spans:#?}"
    );
    gateway.shutdown().await;
}
