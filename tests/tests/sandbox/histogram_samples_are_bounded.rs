//! Histogram samples do not pile up in a gateway that nobody scrapes, and none is lost. Each
//! sample is counted into its fixed bucket as it is recorded. Here a plugin records 20,000
//! samples per request (as 2,000 requests through a chain of ten plugins would) and `/metrics`
//! is not read until the end: 4.4 million samples must not grow the process by more than 16 MB
//! (a recorder that kept them until a fold would hold 70 MB), and the histogram must then count
//! every one of them. Recording runs on two worker threads while the gateway serves.

use tollgate_tests::{Upstream, get};

use crate::sandbox_support::{gateway, metrics, rss, value};

const SAMPLES_PER_REQUEST: u32 = 20_000;
const REQUESTS: u32 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_are_folded_without_a_scrape() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(
        &upstream,
        &format!(
            r#"
[plugins.sampler]
module = "{{fixtures}}/abuser.wasm"
timeout_ms = 5000
config = {{ mode = "histogram", count = {SAMPLES_PER_REQUEST}, report = true }}

[[routes]]
name = "sample"
path_prefix = "/"
upstream = "up"
chain = ["sampler"]
"#
        ),
    )
    .await;
    let url = gateway.url("/x");
    // Warm up the allocator and the instance pool.
    for _ in 0..20 {
        assert_eq!(get(&url, &[]).await.status, 200);
    }
    let before = rss();
    for _ in 0..REQUESTS {
        let reply = get(&url, &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["errors"], 0, "every sample is accepted");
    }
    let grown = rss().saturating_sub(before);
    let samples = u64::from(SAMPLES_PER_REQUEST) * u64::from(REQUESTS);
    println!(
        "{samples} histogram samples grew the process by {} KB",
        grown >> 10
    );
    assert!(
        grown < 16 << 20,
        "{samples} histogram samples grew the process by {} MB without a scrape",
        grown >> 20
    );

    // Folded, not lost: the histogram counts every sample once.
    let text = metrics(&gateway).await;
    let counted = value(
        &text,
        "tollgate_custom_abuse_seconds_count",
        &[("plugin", "sampler")],
    );
    assert_eq!(
        counted,
        f64::from(SAMPLES_PER_REQUEST) * f64::from(REQUESTS + 20),
        "every recorded sample is in the histogram"
    );
}
