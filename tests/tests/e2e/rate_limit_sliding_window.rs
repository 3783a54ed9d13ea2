//! The sliding-window algorithm admits its limit per window, counts the previous window's
//! requests in proportion to how much of it still lies within the last period, and refuses
//! with sane `Retry-After` and `RateLimit-*` values.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use tollgate_tests::{Gateway, Reply, Upstream, client, send};

const PERIOD_MS: u64 = 2_000;

fn config(upstream: &Upstream) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.limit]
module = "{{plugins}}/rate_limit.wasm"
config = {{ limit = 5, period = "2s", algorithm = "sliding-window", key = ["ip"] }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "echo"
chain = ["limit"]
"#,
        upstream = upstream.target()
    )
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Sleep until `offset_ms` into the next window (windows are aligned to the Unix epoch, the
/// gateway's clock is this machine's clock).
async fn until_window_offset(offset_ms: u64) {
    let now = now_ms();
    let next = (now / PERIOD_MS + 1) * PERIOD_MS + offset_ms;
    tokio::time::sleep(Duration::from_millis(next - now)).await;
}

async fn concurrent(gateway: &Gateway, n: usize) -> Vec<Reply> {
    let client = client();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let url = gateway.url("/x");
            tokio::spawn(async move { send(&client, Method::GET, &url, &[], Bytes::new()).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

fn admitted(replies: &[Reply]) -> usize {
    replies.iter().filter(|r| r.status == 200).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn admits_its_limit_per_window_and_weighs_the_previous_one() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream)).await;

    // At the start of a window: exactly the limit of 20 concurrent requests.
    until_window_offset(20).await;
    let first = concurrent(&gateway, 20).await;
    assert_eq!(admitted(&first), 5);
    for r in first.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 429);
        assert_eq!(r.json()["error"], "rate_limited");
        assert_eq!(r.header("ratelimit-limit"), Some("5"));
        assert_eq!(r.header("ratelimit-remaining"), Some("0"));
        assert_eq!(r.header("ratelimit-policy"), Some("5;w=2"));
        // The next window must be a fifth under way before 5 carried requests fall to 4:
        // between 2 and 2.4 s from now, so 3 s rounded up.
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((2..=3).contains(&retry), "retry-after {retry}");
        let reset: u64 = r.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!((3..=4).contains(&reset), "reset {reset}");
    }

    // Half way through the next window, half of the previous window's 5 still count (rounded
    // up to 3, or 2 a little later): 2 or 3 more are admitted, not 5.
    until_window_offset(PERIOD_MS / 2).await;
    let second = concurrent(&gateway, 10).await;
    let n = admitted(&second);
    assert!(
        (2..=3).contains(&n),
        "{n} admitted half way into the next window"
    );

    // Two windows later nothing carries over: the full limit again.
    until_window_offset(PERIOD_MS + 20).await;
    let third = concurrent(&gateway, 10).await;
    assert_eq!(admitted(&third), 5);
    gateway.shutdown().await;
}
