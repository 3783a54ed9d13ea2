//! A plugin spinning to its CPU deadline yields at every epoch tick, so it delays only its own
//! request: a benign route served by the same worker thread keeps low latency meanwhile.

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
    // Without yielding, each benign request waits behind a 300 ms spin (p50 >= 300 ms).
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        assert_eq!(get(&gateway.url("/ok"), &[]).await.status, 200);
        times.push(t.elapsed());
    }
    for s in spinners {
        s.abort();
    }
    times.sort();
    let (p50, p90) = (times[15], times[27]);
    assert!(
        p50 < Duration::from_millis(150) && p90 < Duration::from_millis(250),
        "benign p50 {p50:?}, p90 {p90:?}"
    );
}
