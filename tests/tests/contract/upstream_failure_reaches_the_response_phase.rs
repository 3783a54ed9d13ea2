//! When the upstream fails and the gateway answers itself (connect refused → 502, no response
//! head in time → 504), the response phase of the plugins whose request phase ran is told what
//! happened (0.2.0 `response.upstream-error`: the kind, and whether request bytes may have
//! reached the upstream), and so is their log phase (`log-entry.upstream-error`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::runtime::{RedisOptions, RedisState, StateBackend};
use tollgate_tests::{Gateway, Upstream, dead_port, get};

#[tokio::test(flavor = "multi_thread")]
async fn refused_and_timed_out_upstreams_are_told_to_the_plugins() {
    let slow = Upstream::slow("slow", Duration::from_secs(3)).await;
    let ok = Upstream::echo("ok").await;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!(
        "tollgate-test:upstream-error:{}:{nanos}:",
        std::process::id()
    );
    let config = format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[state]
backend = "redis"
url = "redis://127.0.0.1:6379"
timeout_ms = 1000
key_prefix = "{prefix}"

[upstreams.down]
targets = ["{down}"]

[upstreams.slow]
targets = ["{slow}"]
request_timeout_ms = 300

[upstreams.ok]
targets = ["{ok}"]

[plugins.watch]
module = "{{fixtures}}/upstream_watch.wasm"

[[routes]]
name = "down"
path_prefix = "/down"
upstream = "down"
chain = ["watch"]

[[routes]]
name = "slow"
path_prefix = "/slow"
upstream = "slow"
chain = ["watch"]

[[routes]]
name = "ok"
path_prefix = "/ok"
upstream = "ok"
chain = ["watch"]
"#,
        down = dead_port().await,
        slow = slow.target(),
        ok = ok.target(),
    );
    let gateway = Gateway::start(&config).await;

    let refused = get(&gateway.url("/down/x"), &[]).await;
    assert_eq!(refused.status, 502, "{:?}", refused.body);
    assert_eq!(
        refused.header("x-upstream-error"),
        Some("connect sent=false status=502")
    );
    assert_eq!(
        refused.json()["error"],
        "upstream_unavailable",
        "the gateway's own JSON error"
    );

    let timed_out = get(&gateway.url("/slow/x"), &[]).await;
    assert_eq!(timed_out.status, 504, "{:?}", timed_out.body);
    assert_eq!(
        timed_out.header("x-upstream-error"),
        Some("timeout sent=true status=504")
    );

    let fine = get(&gateway.url("/ok/x"), &[]).await;
    assert_eq!(fine.status, 200);
    assert_eq!(fine.header("x-upstream-error"), None);

    // The log phase runs after the response; give it a moment, then read its counters.
    let state = RedisState::new(RedisOptions {
        url: "redis://127.0.0.1:6379".into(),
        timeout: Duration::from_secs(2),
        key_prefix: prefix,
    })
    .unwrap();
    let mut counts = (0, 0, 0);
    for _ in 0..50 {
        counts = (
            state
                .get_counter("watch:upstream-error:connect:false")
                .await
                .unwrap(),
            state
                .get_counter("watch:upstream-error:timeout:true")
                .await
                .unwrap(),
            state.get_counter("watch:upstream-ok").await.unwrap(),
        );
        if counts == (1, 1, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts, (1, 1, 1), "log entries: (connect, timeout, ok)");
    gateway.shutdown().await;
}
