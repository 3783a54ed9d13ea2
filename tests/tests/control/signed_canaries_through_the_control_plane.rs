//! Signed modules and canary decisions through the control plane: `ctl apply` uploads each
//! module's `.sig` and writes `[gateway] trusted_keys` files into the config as PEM, so a
//! following gateway with `require_signatures = true` loads what was signed; an unsigned module
//! or one signed by an untrusted key is refused by the control plane at apply time, naming the
//! module, and the fleet keeps serving. `ctl canary promote|rollback NAME` stores a revision
//! that every gateway applies.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tollgate_tests::{Upstream, get};

use crate::support::{ADMIN, ControlPlane, Database, Node, apply, tollgate_bin};

/// `tollgate plugin ARGS`, which must succeed.
fn plugin_cli(args: &[&str]) {
    let out = Command::new(tollgate_bin())
        .arg("plugin")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tollgate plugin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copy `from` to `dir/name`, with a custom section named `tag` appended when given (the same
/// component, other bytes: modules are stored and signed by hash), and sign it with `key`.
fn module(dir: &Path, from: &Path, name: &str, tag: Option<&str>, key: Option<&str>) {
    let to = dir.join(name);
    let mut bytes = std::fs::read(from).unwrap();
    if let Some(tag) = tag {
        // Section id 0 (custom), its size, the name's length, the name.
        let size = u8::try_from(tag.len() + 1).unwrap();
        bytes.extend([0, size, size - 1]);
        bytes.extend(tag.as_bytes());
    }
    std::fs::write(&to, bytes).unwrap();
    if let Some(key) = key {
        let key = dir.join(key);
        plugin_cli(&["sign", "--key", key.to_str().unwrap(), to.to_str().unwrap()]);
    }
}

fn config(upstream: &str, stable: &str, canary: Option<(&str, u32)>) -> String {
    let canary = canary.map_or(String::new(), |(module, percent)| {
        format!(
            r#"
[plugins.tag.canary]
module = "{module}"
percent = {percent}
split = "request"
config = {{ trigger_header = "x-never-sent", tag = "canary" }}
"#
        )
    });
    tollgate_tests::expand(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
trusted_keys = ["ops.pub"]
require_signatures = true

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{upstream}"]

[plugins.tag]
module = "{stable}"
config = {{ request = {{ set = {{ "x-version" = "stable" }} }} }}
{canary}
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
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let headers = &reply.json()["headers"];
    if headers["x-trapper"][0] == "canary" {
        "canary".into()
    } else {
        headers["x-version"][0].as_str().unwrap_or("none").into()
    }
}

async fn wait_for_version(node: &Node, want: &str) {
    let started = Instant::now();
    while version(node).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the gateway never served {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `ctl apply` of `config`, expected to be refused: its stderr.
fn refused(cp: &ControlPlane, dir: &Path, config: &str) -> String {
    let file = dir.join("gateway.toml");
    std::fs::write(&file, config).unwrap();
    let (code, out, err) = cp.ctl(ADMIN, &["apply", "-f", file.to_str().unwrap()]);
    assert_ne!(code, 0, "applied, though it should be refused:\n{out}");
    err
}

#[tokio::test]
async fn signed_modules_load_unsigned_ones_are_refused_and_canaries_change_fleet_wide() {
    let upstream = Upstream::echo("app").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plugin_cli(&["keygen", d.join("ops.pem").to_str().unwrap()]);
    plugin_cli(&["keygen", d.join("stranger.pem").to_str().unwrap()]);
    let headers = tollgate_tests::plugin_dir().join("headers.wasm");
    let trapper = tollgate_tests::fixture_dir().join("trapper.wasm");
    module(d, &headers, "stable.wasm", None, Some("ops.pem"));
    module(d, &trapper, "canary.wasm", None, Some("ops.pem"));
    module(d, &headers, "unsigned.wasm", Some("unsigned"), None);
    module(
        d,
        &trapper,
        "foreign.wasm",
        Some("foreign"),
        Some("stranger.pem"),
    );
    // The stable module's bytes signed by a second, untrusted key as well: kept beside the
    // first signature, not instead of it.
    module(d, &headers, "stable-again.wasm", None, Some("stranger.pem"));

    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let node_token = cp.token("fleet", "node").await;
    let target = upstream.target();
    apply(
        &cp,
        ADMIN,
        d,
        &config(&target, "stable.wasm", Some(("canary.wasm", 0))),
        "signed, canary at 0 %",
    );
    let stored = cp
        .api(http::Method::GET, "/v1/revisions/current", ADMIN, None)
        .await
        .json();
    let text = stored["config"].as_str().unwrap_or_default();
    assert!(
        text.contains("-----BEGIN PUBLIC KEY-----") && !text.contains("ops.pub"),
        "the trusted key travels as PEM text:\n{text}"
    );

    let node = Node::start(&cp, &node_token, "gw");
    assert_eq!(version(&node).await, "stable");

    // A second signature by an untrusted key for the stable module: both are stored, and the
    // revision that uses it still applies with the trusted one.
    apply(
        &cp,
        ADMIN,
        d,
        &config(&target, "stable-again.wasm", Some(("canary.wasm", 0))),
        "same module, second signature",
    );
    let hash = tollgate::control::hash_bytes(&std::fs::read(d.join("stable.wasm")).unwrap());
    let sigs = cp
        .api(
            http::Method::GET,
            &format!("/v1/modules/{hash}/signatures"),
            ADMIN,
            None,
        )
        .await
        .json();
    assert_eq!(sigs.as_array().map(Vec::len), Some(2), "{sigs}");

    // Promote through the control plane: the canary serves everything, the canary table is gone.
    let (code, out, err) = cp.ctl(ADMIN, &["canary", "promote", "tag", "-m", "looks good"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for_version(&node, "canary").await;
    let current = cp
        .api(http::Method::GET, "/v1/revisions/current", ADMIN, None)
        .await
        .json();
    assert_eq!(current["message"], "looks good");
    let text = current["config"].as_str().unwrap_or_default();
    assert!(!text.contains("[plugins.tag.canary]"), "{text}");
    let (code, _, err) = cp.ctl(ADMIN, &["canary", "rollback", "tag"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no canary"), "{err}");

    // A new canary at 100 %, then rolled back fleet-wide.
    apply(
        &cp,
        ADMIN,
        d,
        &config(&target, "stable.wasm", Some(("canary.wasm", 100))),
        "canary at 100 %",
    );
    wait_for_version(&node, "canary").await;
    let (code, out, err) = cp.ctl(ADMIN, &["canary", "rollback", "tag"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for_version(&node, "stable").await;

    // Unsigned, and signed by a key the config does not trust: refused at apply, naming why.
    let before = cp
        .api(http::Method::GET, "/v1/revisions", ADMIN, None)
        .await
        .json();
    let err = refused(&cp, d, &config(&target, "unsigned.wasm", None));
    assert!(
        err.contains("plugins.tag") && err.contains("no signature"),
        "{err}"
    );
    let err = refused(
        &cp,
        d,
        &config(&target, "stable.wasm", Some(("foreign.wasm", 10))),
    );
    assert!(
        err.contains("plugins.tag.canary") && err.contains("not in"),
        "{err}"
    );
    let after = cp
        .api(http::Method::GET, "/v1/revisions", ADMIN, None)
        .await
        .json();
    assert_eq!(before, after, "a refused config stores nothing");
    assert_eq!(version(&node).await, "stable");

    // A viewer cannot promote; an entry that does not exist is a 404.
    let viewer = cp.token("look", "viewer").await;
    let r = cp
        .api(http::Method::POST, "/v1/plugins/tag/promote", &viewer, None)
        .await;
    assert_eq!(r.status, 403);
    let r = cp
        .api(http::Method::POST, "/v1/plugins/nope/promote", ADMIN, None)
        .await;
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
}
