//! `tollgate ctl apply` of an invalid config is refused with every error and its TOML path
//! (the checks of `tollgate check`, each plugin's own `init` included), and nothing is stored;
//! `ctl diff` shows what a valid change would do, and a rollback makes an old revision current.

use http::Method;
use tollgate_tests::Upstream;

use crate::support::{ADMIN, ControlPlane, Database};

fn config(upstream: &str, auth: &str, route_upstream: &str) -> String {
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
config = {auth}

[[routes]]
name = "api"
path_prefix = "/"
upstream = "{route_upstream}"
chain = ["auth"]
"#
    ))
}

#[tokio::test]
async fn invalid_config_changes_nothing_and_names_every_path() {
    let upstream = Upstream::echo("app").await;
    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    let good = config(
        &upstream.target(),
        r#"{ api_key = { control = true } }"#,
        "app",
    );
    std::fs::write(&file, &good).unwrap();
    let (code, out, err) = cp.ctl(
        ADMIN,
        &["apply", "-f", file.to_str().unwrap(), "-m", "first"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("revision 1 stored"), "{out}");

    // A route to an unknown upstream, and a plugin config its `init` refuses.
    let bad = config(
        &upstream.target(),
        r#"{ api_key = { keys = [] } }"#,
        "nowhere",
    );
    std::fs::write(&file, &bad).unwrap();
    let (code, out, err) = cp.ctl(ADMIN, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("routes[0].upstream"), "{err}");
    let (code, _, err) = {
        let only_plugin = config(&upstream.target(), r#"{ api_key = { keys = [] } }"#, "app");
        std::fs::write(&file, only_plugin).unwrap();
        cp.ctl(ADMIN, &["apply", "-f", file.to_str().unwrap()])
    };
    assert_eq!(code, 1);
    assert!(
        err.contains("plugins.auth") && err.contains("at least one key"),
        "{err}"
    );
    let revisions = cp
        .api(Method::GET, "/v1/revisions", ADMIN, None)
        .await
        .json();
    assert_eq!(
        revisions.as_array().unwrap().len(),
        1,
        "nothing stored: {revisions}"
    );

    // A module that cannot be read is named before anything is sent.
    std::fs::write(
        &file,
        good.replace("module = \"auth\"", "module = \"missing.wasm\""),
    )
    .unwrap();
    let (code, _, err) = cp.ctl(ADMIN, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("plugins.auth.module"), "{err}");

    // The API answers an invalid config with 422 and the issues as JSON.
    let body = serde_json::json!({"config": "[[routes]]\nname = 1\n"});
    let r = cp
        .api(Method::POST, "/v1/revisions", ADMIN, Some(body))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"], "invalid_config");
    assert!(
        !r.json()["issues"].as_array().unwrap().is_empty(),
        "{:?}",
        r.json()
    );

    // diff, a second revision, the diff between them, a rollback.
    let second = good.replace("path_prefix = \"/\"", "path_prefix = \"/v2/\"");
    std::fs::write(&file, &second).unwrap();
    let (code, out, _) = cp.ctl(ADMIN, &["diff", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("-path_prefix = \"/\"") && out.contains("+path_prefix = \"/v2/\""),
        "{out}"
    );
    let (code, out, err) = cp.ctl(
        ADMIN,
        &["apply", "-f", file.to_str().unwrap(), "-m", "v2 prefix"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let d = cp
        .api(Method::GET, "/v1/revisions/1/diff/2", ADMIN, None)
        .await
        .json();
    assert!(
        d["diff"]
            .as_str()
            .unwrap()
            .contains("+path_prefix = \"/v2/\""),
        "{d}"
    );
    let (code, out, _) = cp.ctl(ADMIN, &["rollback", "1", "-m", "back"]);
    assert_eq!(code, 0);
    assert!(out.contains("revision 3 stored"), "{out}");
    let (_, current, _) = cp.ctl(ADMIN, &["get"]);
    assert!(
        current.contains("path_prefix = \"/\"") && current.contains("modules/"),
        "{current}"
    );
    let r3 = cp
        .api(Method::GET, "/v1/revisions/3", ADMIN, None)
        .await
        .json();
    assert_eq!(
        (r3["rollback_of"].as_i64(), r3["message"].as_str()),
        (Some(1), Some("back"))
    );
}
