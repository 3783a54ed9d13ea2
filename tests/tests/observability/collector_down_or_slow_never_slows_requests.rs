//! A collector that refuses connections or answers after 5 s never slows a request: 200 requests
//! all succeed, each well under 100 ms, and what could not be exported is counted in `/metrics`
//! (`tollgate_telemetry_spans_dropped_total`, `tollgate_telemetry_export_failures_total`).

use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, Upstream, client, dead_port, send};

use super::support::{Receiver, metrics, sample_sum};

async fn gateway(endpoint: &str, upstream: &Upstream) -> Gateway {
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[telemetry]
endpoint = "{endpoint}"
export_timeout_ms = 1000
batch_size = 8
queue_size = 16

[upstreams.u]
targets = ["{target}"]

[[routes]]
name = "r"
path_prefix = "/"
upstream = "u"
"#,
        target = upstream.target(),
    ))
    .await
}

/// 200 requests; each must succeed and take well under 100 ms. Returns the slowest.
async fn two_hundred_requests(gateway: &Gateway) -> Duration {
    let client = client();
    let mut slowest = Duration::ZERO;
    for i in 0..200 {
        let started = Instant::now();
        let reply = send(&client, http::Method::GET, &gateway.url("/x"), &[], "").await;
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "request {i}: {reply:?}");
        assert!(
            took < Duration::from_millis(100),
            "request {i} took {took:?}"
        );
        slowest = slowest.max(took);
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_refusing_connections_costs_requests_nothing() {
    let upstream = Upstream::echo("u").await;
    let endpoint = format!("http://{}", dead_port().await);
    let gateway = gateway(&endpoint, &upstream).await;
    let slowest = two_hundred_requests(&gateway).await;
    let admin = gateway.admin.unwrap();
    // The export task notices the refusals on its own time.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics(admin).await;
        let dropped = sample_sum(&text, "tollgate_telemetry_spans_dropped_total", "");
        if dropped >= 400.0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let failed = sample_sum(&text, "tollgate_telemetry_export_failures_total", "");
    let dropped = sample_sum(&text, "tollgate_telemetry_spans_dropped_total", "");
    println!(
        "refused: slowest request {slowest:?}, {failed} failed exports, {dropped} spans dropped"
    );
    assert!(failed >= 1.0, "{text}");
    // Every span of the 200 requests (server span + upstream attempt each) is accounted for.
    assert_eq!(dropped, 400.0, "{text}");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_answering_after_five_seconds_costs_requests_nothing() {
    let receiver = Receiver::start(Duration::from_secs(5)).await;
    let upstream = Upstream::echo("u").await;
    let gateway = gateway(&receiver.endpoint(), &upstream).await;
    let slowest = two_hundred_requests(&gateway).await;
    let text = metrics(gateway.admin.unwrap()).await;
    let full = sample_sum(
        &text,
        "tollgate_telemetry_spans_dropped_total",
        r#"reason="queue_full""#,
    );
    println!("slow collector: slowest request {slowest:?}, {full} spans dropped on a full queue");
    // One export is in flight for seconds and 16 requests wait behind it: the rest are dropped.
    assert!(full >= 300.0, "{text}");
    gateway.shutdown().await;
}
