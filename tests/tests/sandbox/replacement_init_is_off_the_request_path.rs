//! A replacement instance's `init` never runs on the request path. The plugins here take 2 s to
//! `init` (every instance: the warm ones at load and each replacement). After an instance traps,
//! requests are answered within the checkout wait (`max(timeout_ms, 100 ms)`, 250 ms here): 200
//! from another idle instance, or 503 `unavailable` when there is none, never after waiting
//! for a 2 s `init` of their own. Once the background replacement is made, the plugin serves
//! 200 again.

use std::time::{Duration, Instant};

use tollgate_tests::{Reply, Upstream, get};

use crate::sandbox_support::gateway;

/// How long every `init` of the plugins below spins (under an init deadline of
/// `max(10 × timeout_ms, 1 s)` = 2.5 s).
const INIT: Duration = Duration::from_millis(2000);

/// The most one request may take: the 250 ms checkout wait plus slack for a loaded 2-core
/// machine, and still half of `INIT`, so a request that made its own instance cannot pass.
const BOUND: Duration = Duration::from_millis(1000);

/// `GET path` (with the trap header when `trap`), timed, failing when it took `BOUND` or more.
async fn timed(url: String, trap: bool) -> Reply {
    let headers: &[(&str, &str)] = if trap { &[("x-abuse-trap", "1")] } else { &[] };
    let started = Instant::now();
    let reply = get(&url, headers).await;
    let took = started.elapsed();
    assert!(
        took < BOUND,
        "GET {url} (trap: {trap}) took {took:?}, answered {}: a request waited for an init",
        reply.status
    );
    reply
}

/// `n` concurrent timed requests to `url`.
async fn burst(url: &str, n: usize) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(timed(url.to_owned(), false)))
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    replies
}

fn assert_trapped(reply: &Reply, plugin: &str) {
    assert_eq!(reply.status, 500, "{:?}", reply.body);
    let body = reply.json();
    assert_eq!(body["plugin"], plugin);
    assert_eq!(body["kind"], "trap");
}

#[tokio::test]
async fn requests_never_wait_for_a_replacement_init() {
    let upstream = Upstream::echo("up").await;
    let init_ms = INIT.as_millis();
    let gateway = gateway(
        &upstream,
        &format!(
            r#"
[plugins.lone]
module = "{{fixtures}}/abuser.wasm"
pool_size = 1
max_instances = 1
timeout_ms = 250
config = {{ mode = "trap", init_spin_ms = {init_ms} }}

[plugins.pair]
module = "{{fixtures}}/abuser.wasm"
pool_size = 2
max_instances = 2
timeout_ms = 250
config = {{ mode = "trap", init_spin_ms = {init_ms} }}

[[routes]]
name = "lone"
path_prefix = "/lone"
upstream = "up"
chain = ["lone"]

[[routes]]
name = "pair"
path_prefix = "/pair"
upstream = "up"
chain = ["pair"]
"#
        ),
    )
    .await;
    let lone = gateway.url("/lone");
    let pair = gateway.url("/pair");
    assert_eq!(timed(lone.clone(), false).await.status, 200);
    assert_eq!(timed(pair.clone(), false).await.status, 200);

    // `pair`: one of two instances traps; while its replacement spends 2 s in `init`, the other
    // instance serves every request (a waiting request is woken when it comes back).
    assert_trapped(&timed(pair.clone(), true).await, "pair");
    for reply in burst(&pair, 8).await {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    // `lone`: its only instance traps. Requests made now find no instance; each waits 250 ms
    // for the replacement, then fails 503 `unavailable`, instead of running `init` itself.
    let trapped_at = Instant::now();
    assert_trapped(&timed(lone.clone(), true).await, "lone");
    for reply in burst(&lone, 6).await {
        // The replacement cannot be ready before `INIT` after the trap; every request above
        // answered within `BOUND` (half of it) of being sent right after the trap's answer.
        assert_eq!(reply.status, 503, "{:?}", reply.body);
        let body = reply.json();
        assert_eq!(body["plugin"], "lone");
        assert_eq!(body["kind"], "unavailable");
    }

    // The replacement is made in the background: `lone` serves 200 again, no sooner than its
    // `init` allows (so the fixture really was slow to make), and every attempt meanwhile
    // answered within `BOUND`.
    let back = loop {
        let reply = timed(lone.clone(), false).await;
        if reply.status == 200 {
            break trapped_at.elapsed();
        }
        assert_eq!(reply.status, 503, "{:?}", reply.body);
        assert_eq!(reply.json()["kind"], "unavailable");
        assert!(
            trapped_at.elapsed() < Duration::from_secs(20),
            "`lone` never came back after its trap"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        back >= INIT,
        "served 200 {back:?} after the trap: init did not spin"
    );
    assert_eq!(timed(pair, false).await.status, 200);
}
