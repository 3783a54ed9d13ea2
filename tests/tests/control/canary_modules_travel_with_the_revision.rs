//! A config with a canary pushed through the control plane: `ctl apply` uploads the canary's
//! module too (named by hash in the stored revision), and a following gateway fetches it and
//! serves the canary's slice.

use std::time::{Duration, Instant};

use tollgate_tests::{Upstream, get};

use crate::support::{ADMIN, ControlPlane, Database, Node, apply};

fn config(upstream: &str, percent: u32) -> String {
    tollgate_tests::expand(&format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{upstream}"]

[plugins.tag]
module = "headers"
config = {{ request = {{ set = {{ "x-version" = "stable" }} }} }}

[plugins.tag.canary]
module = "{{fixtures}}/trapper.wasm"
percent = {percent}
split = "request"
config = {{ trigger_header = "x-never-sent", tag = "canary" }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
chain = ["tag"]
"#
    ))
}

/// Which version served a request, from what the echo upstream received.
async fn version(node: &Node) -> String {
    let reply = get(&node.url("/"), &[]).await;
    assert_eq!(reply.status, 200);
    let headers = &reply.json()["headers"];
    if headers["x-trapper"][0] == "canary" {
        "canary".into()
    } else {
        headers["x-version"][0].as_str().unwrap_or("none").into()
    }
}

#[tokio::test]
async fn canary_module_is_uploaded_and_served_by_following_gateways() {
    let upstream = Upstream::echo("app").await;
    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let node_token = cp.token("fleet", "node").await;
    let dir = tempfile::tempdir().unwrap();
    apply(
        &cp,
        ADMIN,
        dir.path(),
        &config(&upstream.target(), 100),
        "canary at 100 %",
    );

    let stored = cp
        .api(http::Method::GET, "/v1/revisions/1", ADMIN, None)
        .await
        .json();
    let text = stored["config"].as_str().unwrap_or_default().to_owned();
    let canary_module = text
        .lines()
        .skip_while(|l| !l.starts_with("[plugins.tag.canary]"))
        .find(|l| l.starts_with("module"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        canary_module.contains("modules/") && !canary_module.contains("trapper"),
        "the canary's module is stored by hash: {canary_module:?}\n{stored}"
    );

    let node = Node::start(&cp, &node_token, "gw");
    assert_eq!(version(&node).await, "canary");

    apply(
        &cp,
        ADMIN,
        dir.path(),
        &config(&upstream.target(), 0),
        "canary off",
    );
    let started = Instant::now();
    while version(&node).await != "stable" {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the 0 % revision never served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
