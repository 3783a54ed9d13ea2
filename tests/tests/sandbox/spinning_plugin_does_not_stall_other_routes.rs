//! A plugin spinning to its CPU deadline yields at every epoch tick, so it delays only its own
//! request: a benign route served by the same worker thread keeps a low p99 meanwhile.

use std::time::{Duration, Instant};

use tollgate_tests::{Upstream, client, get, send};

use crate::sandbox_support::gateway;

#[tokio::test] // one worker thread: the gateway, the spinner and the benign client share it
async fn benign_route_p99_stays_low_while_a_plugin_spins() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(
        &upstream,
        r#"
[plugins.spinner]
module = "{fixtures}/looper.wasm"
timeout_ms = 300

[[routes]]
name = "spin"
path_prefix = "/spin"
upstream = "up"
chain = ["spinner"]

[[routes]]
name = "ok"
path_prefix = "/ok"
upstream = "up"
"#,
    )
    .await;
    let url = gateway.url("/spin");
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = client();
                loop {
                    let reply = send(&client, http::Method::GET, &url, &[], "").await;
                    assert_eq!(reply.status, 503);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let t = Instant::now();
        assert_eq!(get(&gateway.url("/ok"), &[]).await.status, 200);
        times.push(t.elapsed());
    }
    for s in spinners {
        s.abort();
    }
    times.sort();
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    assert!(
        times.len() >= 20,
        "only {} benign requests in 1.5 s",
        times.len()
    );
    assert!(
        p99 < Duration::from_millis(100),
        "benign p99 {p99:?} over {} requests",
        times.len()
    );
}
