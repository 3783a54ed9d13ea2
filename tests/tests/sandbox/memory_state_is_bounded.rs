//! The memory state backend is bounded: a plugin writing ever new 10 KB keys (as a rate limit
//! keyed by a client-chosen header would) makes the store evict, and the process's memory stays
//! within the cap instead of growing with every key.

use tollgate_tests::{Upstream, get};

use crate::sandbox_support::{gateway, rss};

#[tokio::test]
async fn many_large_keys_are_evicted_within_the_cap() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(
        &upstream,
        r#"
[limits]
state_max_bytes = 4194304

[plugins.filler]
module = "{fixtures}/abuser.wasm"
config = { mode = "state-keys", count = 200, bytes = 10240, report = true }

[[routes]]
name = "fill"
path_prefix = "/"
upstream = "up"
chain = ["filler"]
"#,
    )
    .await;
    // Warm up the allocator and the instance pool, then write 120 MB of keys.
    for _ in 0..3 {
        assert_eq!(get(&gateway.url("/x"), &[]).await.status, 200);
    }
    let before = rss();
    for _ in 0..60 {
        let reply = get(&gateway.url("/x"), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json()["errors"],
            0,
            "writes are accepted; old keys are evicted"
        );
    }
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 48 << 20,
        "120 MB of keys against a 4 MiB cap grew the process by {} MB",
        grown >> 20
    );
}
