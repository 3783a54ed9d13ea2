//! API keys as data: a rotated key and its successor are both accepted during the grace
//! period, then only the new one; an expired key is refused at once; a deleted consumer's keys
//! are refused; a key change needs no config revision.

use std::time::{Duration, Instant};

use http::Method;
use tollgate_tests::{Upstream, get};

use crate::support::{ControlPlane, Database, Node, apply};

const CONFIG: &str = r#"
[gateway]
plugin_dir = "{plugins}"
cache_dir = "{cache}"

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["UPSTREAM"]

[plugins.auth]
module = "auth"
[plugins.auth.config]
api_key = { header = "x-api-key", control = true }

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
chain = ["auth"]
"#;

async fn status(node: &Node, key: &str) -> u16 {
    get(&node.url("/"), &[("x-api-key", key)])
        .await
        .status
        .as_u16()
}

/// Wait (≤ 2 s) until `key` gets `want`.
async fn until(node: &Node, key: &str, want: u16) {
    let started = Instant::now();
    while status(node, key).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "key still answers {}",
            status(node, key).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn rotate_expire_and_delete_keys_without_a_revision() {
    let upstream = Upstream::echo("app").await;
    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let operator = cp.token("ops", "operator").await;
    let node_token = cp.token("fleet", "node").await;
    let dir = tempfile::tempdir().unwrap();
    let config = tollgate_tests::expand(CONFIG).replace("UPSTREAM", &upstream.target());
    apply(
        &cp,
        &operator,
        dir.path(),
        &config,
        "keys from the control plane",
    );
    let (old_id, old) = cp.consumer_with_key(&operator, "dana").await;
    let node = Node::start(&cp, &node_token, "gw");
    until(&node, &old, 200).await;
    let echoed = get(&node.url("/"), &[("x-api-key", &old)]).await;
    assert!(
        !String::from_utf8_lossy(&echoed.body).contains(&old),
        "the key is stripped before the upstream"
    );

    // Rotate with a 2 s grace: both keys work, then only the new one.
    let r = cp
        .api(
            Method::POST,
            &format!("/v1/keys/{old_id}/rotate"),
            &operator,
            Some(serde_json::json!({"grace_s": 2})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    let new = r.json()["key"].as_str().unwrap().to_owned();
    let new_id = r.json()["id"].as_str().unwrap().to_owned();
    until(&node, &new, 200).await;
    assert_eq!(
        status(&node, &old).await,
        200,
        "old key valid during the grace period"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    until(&node, &old, 401).await;
    assert_eq!(status(&node, &new).await, 200);

    // Expire now: refused.
    let r = cp
        .api(
            Method::POST,
            &format!("/v1/keys/{new_id}/expire"),
            &operator,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    until(&node, &new, 401).await;

    // Roles and plan change without a revision; gateways get them with the key table.
    let body = serde_json::json!({"roles": ["admin", "ops"], "plan": "platinum"});
    let r = cp
        .api(Method::PUT, "/v1/consumers/dana", &operator, Some(body))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["plan"], "platinum");
    let table = cp
        .api(Method::GET, "/v1/node/keys", &node_token, None)
        .await
        .json();
    let dana: Vec<_> = table["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["consumer"] == "dana")
        .collect();
    assert!(
        dana.iter()
            .all(|k| k["plan"] == "platinum" && k["roles"][0] == "admin"),
        "{table}"
    );

    // A consumer deleted: its keys are refused.
    let (_, other) = cp.consumer_with_key(&operator, "eve").await;
    until(&node, &other, 200).await;
    let r = cp
        .api(Method::DELETE, "/v1/consumers/eve", &operator, None)
        .await;
    assert_eq!(r.status, 200);
    until(&node, &other, 401).await;

    // None of this made a revision.
    let revisions = cp
        .api(Method::GET, "/v1/revisions", &operator, None)
        .await
        .json();
    assert_eq!(revisions.as_array().unwrap().len(), 1);
}
