//! An operator cannot accidentally let an aggregation reach the gateway's admin API or a cloud
//! metadata service: the admin listener is refused whatever upstream names it (checked on the
//! resolved address, so a host name does not get around it), and a link-local target needs an
//! explicit `allow_link_local = true` on its upstream.

#![allow(clippy::unwrap_used)]

use crate::aggregate_support;

use aggregate_support::{Fixed, config, gateway, text};
use serde_json::json;
use tollgate_tests::{Gateway, dead_port, get};

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_is_refused_even_by_host_name() {
    let users = Fixed::json(json!({ "id": 7 })).await;
    let admin_port = dead_port().await.port();
    let gw = gateway(
        &[
            ("users", users.target()),
            // A name, so config validation cannot see it is the admin listener.
            ("control", format!("localhost:{admin_port}")),
        ],
        &["users", "control"],
        r#"backends = [
  { name = "user", upstream = "users", path = "/users/7" },
  { name = "health", upstream = "control", path = "/admin/health", required = false },
]"#,
        ("", &[]),
        &format!("[admin]\naddr = \"127.0.0.1:{admin_port}\"\n"),
    )
    .await;

    // The admin API is there and would answer this path.
    let health = get(&format!("http://127.0.0.1:{admin_port}/admin/health"), &[]).await;
    assert_eq!(health.status, 200, "{}", text(&health));

    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.header("x-tollgate-partial"), Some("true"));
    let body = reply.json();
    assert_eq!(body["user"], json!({ "id": 7 }));
    assert_eq!(body["health"], json!(null));
    let error = body["_errors"]["health"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "upstream `control`: target `localhost:{admin_port}`"
        )) && error.contains("is the gateway's admin listener"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_literal_admin_or_link_local_target_is_a_config_error() {
    let users = Fixed::json(json!({ "id": 7 })).await;
    let admin_port = dead_port().await.port();
    let text = config(
        &[
            ("users", users.target()),
            ("control", format!("127.0.0.1:{admin_port}")),
            ("metadata", "169.254.169.254:80".to_owned()),
        ],
        &["users", "control", "metadata"],
        r#"backends = [{ name = "user", upstream = "users", path = "/users/7" }]"#,
        ("", &[]),
        &format!("[admin]\naddr = \"127.0.0.1:{admin_port}\"\n"),
    );
    let err = Gateway::try_start(&text).await.err().unwrap().to_string();
    assert!(
        err.contains(&format!(
            "plugins.agg.fetch[1]: upstream `control` targets the admin listener (127.0.0.1:{admin_port})"
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "plugins.agg.fetch[2]: upstream `metadata` targets the link-local address 169.254.169.254:80; set `allow_link_local = true`"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_link_local_is_the_explicit_opt_in() {
    // The same upstream that is a config error above loads once its upstream opts in. (No
    // request goes to it: a real metadata service may answer on this address.)
    let users = Fixed::json(json!({ "id": 7 })).await;
    let gw = gateway(
        &[("users", users.target())],
        &["users", "metadata"],
        r#"backends = [{ name = "user", upstream = "users", path = "/users/7" }]"#,
        ("", &[]),
        "[upstreams.metadata]\ntargets = [\"169.254.169.254:80\"]\nallow_link_local = true\n",
    )
    .await;
    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.json(), json!({ "user": { "id": 7 } }));
}
