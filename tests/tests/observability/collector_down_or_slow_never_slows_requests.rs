//! A collector that refuses connections or answers after 5 s never slows a request: 200 requests
//! all succeed, each well under 100 ms, and what could not be exported is counted in `/metrics`
//! (`tollgate_telemetry_spans_dropped_total`, `tollgate_telemetry_export_failures_total`). While
//! a collector keeps failing, the gateway backs off instead of trying every batch, and it sends
//! spans again soon after the collector is back.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_collector_is_retried_with_back_off_and_gets_spans_once_it_is_back() {
    let down_for = Duration::from_secs(3);
    let receiver = Receiver::failing_until(Instant::now() + down_for).await;
    let upstream = Upstream::echo("u").await;
    let gateway = gateway(&receiver.endpoint(), &upstream).await;
    let client = client();
    // Traffic through the outage and after it: a request every 10 ms for 5 s, 2 spans each
    // (batches of 8: about 125 batches while the collector is down).
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < down_for + Duration::from_secs(2) {
        let reply = send(&client, http::Method::GET, &gateway.url("/x"), &[], "").await;
        assert_eq!(reply.status, 200);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Spans arrive again once the collector is back: the pause is at most 10 s.
    let spans = receiver.wait_for(1, Duration::from_secs(15)).await;
    let refused = *receiver.refused.lock().unwrap();
    let text = metrics(gateway.admin.unwrap()).await;
    let failed = sample_sum(&text, "tollgate_telemetry_export_failures_total", "");
    let dropped = sample_sum(
        &text,
        "tollgate_telemetry_spans_dropped_total",
        r#"reason="export_failed""#,
    );
    println!(
        "{sent} requests; collector down {down_for:?}: {refused} refused exports, {failed} failed, \
         {dropped} spans dropped, {} spans exported after",
        spans.len()
    );
    assert!(
        !spans.is_empty(),
        "spans are exported again after the outage"
    );
    // Back-off of 1, 2, 4 s: at most four attempts fall in a 3 s outage, not one per batch.
    assert!(
        (1..=4).contains(&refused),
        "{refused} exports tried while the collector was down"
    );
    assert_eq!(failed, refused as f64, "{text}");
    assert!(dropped >= 100.0, "the outage's spans are counted: {text}");
    gateway.shutdown().await;
}
