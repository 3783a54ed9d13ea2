//! A 10 % canary split by consumer (the auth plugin sets `consumer` from 200 API keys): over
//! 2,000 requests each consumer sees one version and the canary's share is 10 % ± 3 points;
//! `/admin/plugins` reports each version; the percentage changes by hot swap; an operator's
//! rollback keeps the canary out across reloads of the same config until a new canary is named,
//! and promote sends everything to it.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use tollgate_tests::{Gateway, Upstream, admin_reload, client, send};

use crate::rollout_support::{admin_plugins, admin_post, config};

const CONSUMERS: usize = 200;

fn key(i: usize) -> String {
    format!("rollout-test-key-{i:04}-0123456789abcdef")
}

/// Auth with 200 API keys, then `rec` (recorder `stable`) with a recorder canary named
/// `canary_name` at `percent`.
fn canary_config(target: &str, percent: u32, canary_name: &str) -> String {
    let keys: Vec<String> = (0..CONSUMERS)
        .map(|i| {
            let hash: String = Sha256::digest(key(i).as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{{ hash = \"{hash}\", consumer = \"c{i}\" }}")
        })
        .collect();
    config(
        "",
        target,
        &format!(
            r#"
[plugins.auth]
module = "{{plugins}}/auth.wasm"
[plugins.auth.config]
methods = ["api_key"]
api_key = {{ header = "x-api-key", keys = [{keys}] }}

[plugins.rec]
module = "{{fixtures}}/recorder.wasm"
[plugins.rec.config]
name = "stable"
[plugins.rec.canary]
module = "{{fixtures}}/recorder.wasm"
percent = {percent}
split = "consumer"
[plugins.rec.canary.config]
name = "{canary_name}"

[[routes]]
name = "r"
path_prefix = "/"
upstream = "up"
chain = ["auth", "rec"]
"#,
            keys = keys.join(", ")
        ),
    )
}

/// Send `rounds` requests per consumer; the version (recorder name) each consumer saw, by
/// consumer index.
async fn versions(gateway: &Gateway, rounds: usize) -> BTreeMap<usize, BTreeSet<String>> {
    let client = client();
    let mut seen: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for _ in 0..rounds {
        for i in 0..CONSUMERS {
            let k = key(i);
            let reply = send(
                &client,
                http::Method::GET,
                &gateway.url("/x"),
                &[("x-api-key", k.as_str())],
                bytes::Bytes::new(),
            )
            .await;
            assert_eq!(
                reply.status,
                200,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            let version = reply.json()["headers"]["x-order"][0]
                .as_str()
                .unwrap()
                .to_owned();
            seen.entry(i).or_default().insert(version);
        }
    }
    seen
}

/// Share (percent) of consumers on version `name`, checking each saw exactly one version.
fn share(seen: &BTreeMap<usize, BTreeSet<String>>, name: &str) -> f64 {
    for (i, versions) in seen {
        assert_eq!(versions.len(), 1, "consumer c{i} saw {versions:?}");
    }
    let on = seen.values().filter(|v| v.contains(name)).count();
    on as f64 * 100.0 / seen.len() as f64
}

#[tokio::test]
async fn ten_percent_canary_by_consumer_then_hot_swap_rollback_and_promote() {
    let upstream = Upstream::echo("up").await;
    let target = upstream.target();
    let gateway = Gateway::start(&canary_config(&target, 10, "canary")).await;
    let admin = gateway.admin.unwrap();

    // 2,000 requests from 200 consumers (10 each).
    let seen = versions(&gateway, 10).await;
    let canary_share = share(&seen, "canary");
    println!(
        "10 % canary by consumer: {canary_share:.1} % of 200 consumers (2,000 requests) on the canary"
    );
    assert!((7.0..=13.0).contains(&canary_share), "{canary_share}");

    // Each version reported on its own: request + response phase per request.
    let plugins = admin_plugins(admin).await;
    let rec: Vec<_> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "rec")
        .collect();
    assert_eq!(rec.len(), 2, "{plugins}");
    let calls = |version: &str| {
        rec.iter()
            .find(|p| p["version"] == version)
            .map(|p| p["calls"].as_u64().unwrap())
            .unwrap()
    };
    let canary_requests = (canary_share * 20.0).round() as u64; // 10 requests per consumer
    assert_eq!(calls("canary"), 2 * canary_requests, "{plugins}");
    assert_eq!(calls("stable"), 2 * (2000 - canary_requests), "{plugins}");
    for p in &rec {
        assert_eq!(p["canary"]["status"], "active", "{p}");
        assert!(p["call_ms"]["p99"].as_f64().unwrap() > 0.0, "{p}");
    }

    // 50 % by hot swap: the canary's pool is reused, the consumers already on it stay.
    gateway.write_config(&canary_config(&target, 50, "canary"));
    let reply = admin_reload(&gateway).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["report"]["loaded"],
        0,
        "only the percentage changed"
    );
    let wider = versions(&gateway, 1).await;
    let wider_share = share(&wider, "canary");
    println!("after the hot swap to 50 %: {wider_share:.1} % of consumers on the canary");
    assert!((40.0..=60.0).contains(&wider_share), "{wider_share}");
    for (i, v) in &seen {
        if v.contains("canary") {
            assert!(wider[i].contains("canary"), "c{i} left the canary");
        }
    }

    // An operator's rollback: everybody on stable, also after reloading the same canary.
    assert_eq!(
        admin_post(admin, "/admin/plugins/rec/rollback")
            .await
            .status,
        200
    );
    assert_eq!(share(&versions(&gateway, 1).await, "canary"), 0.0);
    gateway.write_config(&format!(
        "{}\n# touched\n",
        canary_config(&target, 50, "canary")
    ));
    assert_eq!(admin_reload(&gateway).await.status, 200);
    assert_eq!(
        share(&versions(&gateway, 1).await, "canary"),
        0.0,
        "stays out"
    );
    let refused = admin_post(admin, "/admin/plugins/rec/promote").await;
    assert_eq!(
        refused.status,
        409,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(
        admin_post(admin, "/admin/plugins/auth/promote")
            .await
            .status,
        404
    );

    // A new canary (another config) starts active; promote sends every consumer to it.
    gateway.write_config(&canary_config(&target, 50, "canary-2"));
    assert_eq!(admin_reload(&gateway).await.status, 200);
    let renewed = share(&versions(&gateway, 1).await, "canary-2");
    assert!((40.0..=60.0).contains(&renewed), "{renewed}");
    assert_eq!(
        admin_post(admin, "/admin/plugins/rec/promote").await.status,
        200
    );
    assert_eq!(share(&versions(&gateway, 1).await, "canary-2"), 100.0);
    gateway.shutdown().await;
}
