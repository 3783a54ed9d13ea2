//! Three gateways follow one control plane, on SQLite and on PostgreSQL: a config change under
//! load reaches all three within 2 s with no failed request; a revoked key is refused by all
//! three within 2 s; with the control plane killed they keep serving, a gateway restarted
//! meanwhile serves its last good revision and keys; with the control plane back they converge.
//! Prints the measured propagation times (p50 / max).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use tollgate_tests::{Upstream, client, get};

use crate::support::{ADMIN, ControlPlane, Database, Node, apply, p50_max};

const LIMIT: Duration = Duration::from_secs(2);

/// Auth (API keys from the control plane) then a response header naming the revision.
fn config(upstream: &str, rev: usize) -> String {
    tollgate_tests::expand(&format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{upstream}"]

[plugins.auth]
module = "auth"
[plugins.auth.config]
api_key = {{ header = "x-api-key", control = true }}

[plugins.tag]
module = "headers"
[plugins.tag.config]
response.set = {{ "x-rev" = "{rev}" }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
chain = ["auth", "tag"]
"#
    ))
}

/// (status, x-rev) of `GET /` with `key`.
async fn probe(node: &Node, key: &str) -> (u16, String) {
    let r = get(&node.url("/"), &[("x-api-key", key)]).await;
    (
        r.status.as_u16(),
        r.header("x-rev").unwrap_or("").to_owned(),
    )
}

/// Time until every node answers `want` to `probe`; fails past `limit`.
async fn until_all(
    nodes: &[Node],
    key: &str,
    limit: Duration,
    want: impl Fn(&(u16, String)) -> bool,
) -> Duration {
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for node in nodes {
        loop {
            let got = probe(node, key).await;
            if want(&got) {
                slowest = slowest.max(started.elapsed());
                break;
            }
            assert!(
                started.elapsed() < limit,
                "{} still answers {got:?} after {limit:?}",
                node.name
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    slowest
}

/// Requests with `key` to every node in turn until stopped: (sent, failed).
fn load(
    nodes: Vec<String>,
    key: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let sent = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let (nodes, key, stop) = (nodes.clone(), key.clone(), stop.clone());
            let (sent, failed) = (sent.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let c = client();
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    let url = &nodes[i % nodes.len()];
                    i += 1;
                    let req = Request::get(url.as_str())
                        .header("x-api-key", key.as_str())
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let ok = match c.request(req).await {
                        Ok(r) => r.status() == 200 && r.into_body().collect().await.is_ok(),
                        Err(_) => false,
                    };
                    sent.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
    })
}

async fn scenario(db: Database, label: &str) {
    let upstream = Upstream::echo("app").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cp = ControlPlane::start(&db);
    let node_token = cp.token("fleet", "node").await;
    let operator = cp.token("ops", "operator").await;
    let (_, alice) = cp.consumer_with_key(&operator, "alice").await;
    apply(
        &cp,
        &operator,
        dir.path(),
        &config(&upstream.target(), 1),
        "first",
    );
    let nodes: Vec<Node> = (0..3)
        .map(|i| Node::start(&cp, &node_token, &format!("gw{i}")))
        .collect();
    until_all(&nodes, &alice, Duration::from_secs(30), |g| {
        *g == (200, "1".into())
    })
    .await;

    // Config changes under load.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(
        nodes.iter().map(|n| n.url("/")).collect(),
        alice.clone(),
        stop.clone(),
    );
    let mut config_times = Vec::new();
    for rev in 2..=6 {
        apply(
            &cp,
            &operator,
            dir.path(),
            &config(&upstream.target(), rev),
            &format!("rev {rev}"),
        );
        let want = rev.to_string();
        config_times.push(until_all(&nodes, &alice, LIMIT, |g| g.0 == 200 && g.1 == want).await);
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = traffic.await.unwrap();
    assert!(sent > 100, "the load sent only {sent} requests");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the config changes"
    );

    // Key revocations.
    let mut revoke_times = Vec::new();
    for i in 0..5 {
        let (id, key) = cp.consumer_with_key(&operator, &format!("bob{i}")).await;
        until_all(&nodes, &key, LIMIT, |g| g.0 == 200).await;
        let r = cp
            .api(
                Method::POST,
                &format!("/v1/keys/{id}/revoke"),
                &operator,
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        revoke_times.push(until_all(&nodes, &key, LIMIT, |g| g.0 == 401).await);
    }
    let (c50, cmax) = p50_max(&mut config_times);
    let (r50, rmax) = p50_max(&mut revoke_times);
    println!(
        "[{label}] config change to 3 gateways under load: p50 {c50:.0} ms, max {cmax:.0} ms ({sent} requests, 0 failed)"
    );
    println!("[{label}] key revocation to 3 gateways: p50 {r50:.0} ms, max {rmax:.0} ms");

    // The control plane goes away: gateways keep serving, a restarted one from its disk.
    cp.kill();
    until_all(&nodes, &alice, LIMIT, |g| *g == (200, "6".into())).await;
    let mut nodes = nodes;
    nodes[0].restart();
    until_all(&nodes, &alice, Duration::from_secs(10), |g| {
        *g == (200, "6".into())
    })
    .await;

    // It comes back: everyone converges on the next revision.
    cp.restart();
    apply(
        &cp,
        &operator,
        dir.path(),
        &config(&upstream.target(), 7),
        "after the outage",
    );
    until_all(&nodes, &alice, Duration::from_secs(15), |g| {
        *g == (200, "7".into())
    })
    .await;
    let gateways = cp
        .api(Method::GET, "/v1/gateways", ADMIN, None)
        .await
        .json();
    for node in &nodes {
        let report = gateways
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["node"] == node.name.as_str())
            .unwrap();
        assert_eq!(report["report"]["healthy"], true, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_follow_a_sqlite_control_plane() {
    scenario(Database::sqlite(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_follow_a_postgres_control_plane() {
    scenario(Database::postgres(), "postgres").await;
}
