//! A revision the control plane accepts but a gateway cannot apply (here: an access log file in
//! a directory that does not exist on the gateway) is reported by the gateway, which keeps
//! serving its previous revision, and takes the next good one.

use std::time::{Duration, Instant};

use http::Method;
use tollgate_tests::{Upstream, get};

use crate::support::{ADMIN, ControlPlane, Database, Node, apply};

fn config(upstream: &str, rev: u32, access_log: &str) -> String {
    tollgate_tests::expand(&format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
{access_log}
[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{upstream}"]

[plugins.tag]
module = "headers"
config = {{ response = {{ set = {{ "x-rev" = "{rev}" }} }} }}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
chain = ["tag"]
"#
    ))
}

async fn rev(node: &Node) -> String {
    get(&node.url("/"), &[])
        .await
        .header("x-rev")
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn refused_revision_is_reported_and_the_old_one_keeps_serving() {
    let upstream = Upstream::echo("app").await;
    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let node_token = cp.token("fleet", "node").await;
    let dir = tempfile::tempdir().unwrap();
    apply(
        &cp,
        ADMIN,
        dir.path(),
        &config(&upstream.target(), 1, ""),
        "one",
    );
    let node = Node::start(&cp, &node_token, "gw");
    assert_eq!(rev(&node).await, "1");

    let log =
        "[access_log]\ndestination = \"file\"\npath = \"/nonexistent-tollgate-dir/access.log\"\n";
    apply(
        &cp,
        ADMIN,
        dir.path(),
        &config(&upstream.target(), 2, log),
        "bad log path",
    );
    let started = Instant::now();
    let report = loop {
        let gateways = cp
            .api(Method::GET, "/v1/gateways", ADMIN, None)
            .await
            .json();
        let report = gateways[0]["report"].clone();
        if report["error"]["revision"] == 2 {
            break report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no error reported: {gateways}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(report["revision"], 1, "{report}");
    assert!(
        report["error"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("access log"),
        "{report}"
    );
    assert_eq!(rev(&node).await, "1", "still serving the previous revision");

    apply(
        &cp,
        ADMIN,
        dir.path(),
        &config(&upstream.target(), 3, ""),
        "fixed",
    );
    let started = Instant::now();
    while rev(&node).await != "3" {
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
