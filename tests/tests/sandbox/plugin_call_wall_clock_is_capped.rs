//! A call's wall-clock time is capped including the waits the CPU deadline credits back: a
//! plugin whose `fetch` hangs on a slow upstream fails its request with a 503 `timeout` at
//! `[limits] plugin_call_time_ms`, not when the upstream finally answers.

use std::time::{Duration, Instant};

use tollgate_tests::{Upstream, get};

use crate::sandbox_support::{gateway, limit_hits};

#[tokio::test]
async fn a_call_waiting_on_fetch_times_out_at_the_wall_clock_cap() {
    let upstream = Upstream::echo("up").await;
    let slow = Upstream::slow("slow", Duration::from_secs(3)).await;
    let gateway = gateway(
        &upstream,
        &format!(
            r#"
[limits]
plugin_call_time_ms = 300

[upstreams.slow]
targets = ["{slow}"]

[plugins.waiter]
module = "{{fixtures}}/fetcher.wasm"
fetch = ["slow"]
config = {{ upstream = "slow", timeout_ms = 10000 }}

[[routes]]
name = "wait"
path_prefix = "/"
upstream = "up"
chain = ["waiter"]
"#,
            slow = slow.target()
        ),
    )
    .await;
    let started = Instant::now();
    let reply = get(&gateway.url("/x"), &[]).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    let body = reply.json();
    assert_eq!(body["plugin"], "waiter");
    assert_eq!(body["kind"], "timeout");
    assert!(took < Duration::from_millis(2000), "{took:?}");
    assert!(limit_hits(&gateway, "waiter", "call_time").await >= 1.0);
}
