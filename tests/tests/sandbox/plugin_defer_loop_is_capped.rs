//! A plugin that answers `defer(0)` forever no longer holds the request: past `[limits]
//! plugin_defers` (or the total defer time) the client gets 503 `deferred_too_long`, quickly.

use std::time::{Duration, Instant};

use tollgate_tests::{Upstream, get};

use crate::sandbox_support::{gateway, limit_hits};

#[tokio::test]
async fn defer_zero_in_a_loop_ends_with_503() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(
        &upstream,
        r#"
[limits]
plugin_defers = 50

[plugins.deferrer]
module = "{fixtures}/abuser.wasm"
config = { mode = "defer" }

[[routes]]
name = "defer"
path_prefix = "/"
upstream = "up"
chain = ["deferrer"]
"#,
    )
    .await;
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(10), get(&gateway.url("/x"), &[]))
        .await
        .expect("the request was held for 10 s");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"], "deferred_too_long");
    assert_eq!(reply.json()["plugin"], "deferrer");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(limit_hits(&gateway, "deferrer", "defers").await >= 1.0);
}
