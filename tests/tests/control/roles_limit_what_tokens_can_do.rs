//! Management tokens have roles (a viewer cannot apply, sees no key hashes), node tokens only
//! read config and report, every change is in the audit log, and the control API serves TLS.

use http::Method;
use tollgate_tests::Upstream;

use crate::support::{ADMIN, ControlPlane, Database};

const CONFIG: &str = r#"
[gateway]
plugin_dir = "{plugins}"
cache_dir = "{cache}"

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["UPSTREAM"]

[plugins.creds]
module = "headers"
config = { request = { set = { "authorization" = "Bearer upstream-secret-123" } } }

[[routes]]
name = "api"
path_prefix = "/"
upstream = "app"
chain = ["creds"]
"#;

#[tokio::test]
async fn viewer_and_node_tokens_are_limited_and_changes_are_audited() {
    let upstream = Upstream::echo("app").await;
    let db = Database::postgres();
    let cp = ControlPlane::start(&db);
    let viewer = cp.token("vera", "viewer").await;
    let node = cp.token("gw", "node").await;
    let operator = cp.token("otto", "operator").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        tollgate_tests::expand(CONFIG).replace("UPSTREAM", &upstream.target()),
    )
    .unwrap();

    let (code, _, err) = cp.ctl(&viewer, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("403") && err.contains("viewer"), "{err}");
    let (code, out, err) = cp.ctl(
        &operator,
        &["apply", "-f", file.to_str().unwrap(), "-m", "by otto"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, seen, _) = cp.ctl(&viewer, &["get"]);
    assert_eq!(code, 0, "a viewer reads revisions");
    assert!(
        seen.contains("\"***\"") && !seen.contains("upstream-secret-123"),
        "{seen}"
    );
    let (_, whole, _) = cp.ctl(&operator, &["get"]);
    assert!(
        whole.contains("upstream-secret-123"),
        "operators read the config whole: {whole}"
    );

    let (key_id, _) = cp.consumer_with_key(&operator, "carol").await;
    let as_viewer = cp
        .api(Method::GET, "/v1/consumers/carol", &viewer, None)
        .await;
    assert_eq!(as_viewer.status, 200);
    assert!(
        as_viewer.json()["keys"][0].get("hash").is_none(),
        "{:?}",
        as_viewer.json()
    );
    let as_operator = cp
        .api(Method::GET, "/v1/consumers/carol", &operator, None)
        .await
        .json();
    assert_eq!(as_operator["keys"][0]["hash"].as_str().unwrap().len(), 64);
    for path in [
        "/v1/consumers",
        "/v1/consumers/carol",
        "/v1/tokens",
        "/v1/audit",
    ] {
        let r = cp.api(Method::GET, path, &node, None).await;
        assert_eq!(r.status, 403, "node token on {path}");
        assert_eq!(r.json()["error"], "forbidden");
    }
    let r = cp
        .api(
            Method::POST,
            "/v1/consumers",
            &node,
            Some(serde_json::json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        cp.api(Method::GET, "/v1/revisions/current", &node, None)
            .await
            .status,
        200
    );
    let r = cp
        .api(
            Method::POST,
            &format!("/v1/keys/{key_id}/revoke"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        cp.api(Method::GET, "/v1/audit", &operator, None)
            .await
            .status,
        403
    );
    let r = cp
        .api(Method::GET, "/v1/revisions", "not-a-token", None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
    let r = cp
        .api(
            Method::POST,
            "/v1/consumers",
            &operator,
            Some(serde_json::json!({"name": "bad name"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("bad name"));

    let audit = cp.api(Method::GET, "/v1/audit", ADMIN, None).await.json();
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (actor, action) in [
        ("otto", "revision.create"),
        ("otto", "consumer.create"),
        ("otto", "key.create"),
        ("bootstrap-admin", "token.create"),
    ] {
        assert!(
            actions.contains(&(actor.into(), action.into())),
            "{action} by {actor} missing: {actions:?}"
        );
    }
}

#[tokio::test]
async fn control_api_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ca.cert.pem()).unwrap();
    std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
    let db = Database::sqlite();
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let cp = ControlPlane::start_with(&db, &args);
    let url = format!("https://localhost:{}", cp.addr.port());
    let (code, out, err) = cp.ctl_at(&url, ADMIN, &["--ca", cert.to_str().unwrap(), "history"]);
    assert_eq!(code, 0, "{out}{err}");
    // Without trusting the certificate, the client refuses the connection.
    let (code, _, err) = cp.ctl_at(&url, ADMIN, &["history"]);
    assert_eq!(code, 1);
    assert!(err.contains("unreachable"), "{err}");
}
