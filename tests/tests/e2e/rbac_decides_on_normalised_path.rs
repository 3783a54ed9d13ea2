//! RBAC decides on the path the upstream receives: `//admin`, `/admin/`, `/%61dmin`,
//! `/api/../admin` and `;` parameters all reach the same decision as `/admin`; `/ADMIN` follows
//! the configured case rule. Deny rules win over allow rules, anything not allowed is refused,
//! and a request without a consumer is refused with 403 unless an `anonymous` rule allows it.

#![allow(clippy::unwrap_used)]

use http::Method;
use tollgate_tests::{Gateway, Reply, Upstream, client, get, send};

/// A gateway whose only route runs `who` (the recorder fixture setting `context`, standing in
/// for auth) and then `rbac` with `rules` (TOML, the part after `[plugins.rbac.config]`).
async fn gateway(upstream: &Upstream, context: &str, rbac: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.who]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "who", set_context = {{ {context} }} }}

[plugins.rbac]
module = "{{plugins}}/rbac.wasm"

[plugins.rbac.config]
{rbac}

[[routes]]
name = "all"
path_prefix = "/"
upstream = "echo"
chain = ["who", "rbac"]
"#,
        upstream = upstream.target()
    ))
    .await
}

const BOB: &str = r#"consumer = "bob", roles = "user""#;
const ALICE: &str = r#"consumer = "alice", roles = "admin,user""#;
const ANONYMOUS: &str = "";

/// Every consumer may do anything except a `user` under `/admin`.
fn deny_admin_to_users(case_insensitive: bool) -> String {
    format!(
        r#"
case_insensitive_paths = {case_insensitive}

[[plugins.rbac.config.rules]]
roles = ["*"]
methods = ["*"]
paths = ["/**"]
effect = "allow"

[[plugins.rbac.config.rules]]
roles = ["user"]
consumers = ["mallory"]
methods = ["*"]
paths = ["/admin", "/admin/**"]
effect = "deny"
"#
    )
}

fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        403,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["error"], "forbidden", "{what}");
    assert_eq!(body["message"], "not allowed", "{what}: no rule detail");
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

fn assert_passed(reply: &Reply, what: &str, upstream_path: &str) {
    assert_eq!(
        reply.status,
        200,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["path"], upstream_path, "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn path_variants_of_a_denied_path_are_all_denied() {
    let upstream = Upstream::echo("echo").await;
    let gateway = gateway(&upstream, BOB, &deny_admin_to_users(false)).await;

    for path in [
        "/admin",
        "//admin",
        "/admin/",
        "/%61dmin",
        "/%61%64%6D%69%6E/users",
        "/api/../admin",
        "/api/./../admin/users",
        "/admin//users",
        "/admin;jsessionid=1/users",
    ] {
        assert_forbidden(&get(&gateway.url(path), &[]).await, path);
    }
    assert_passed(&get(&gateway.url("/api/x"), &[]).await, "/api/x", "/api/x");
    assert_passed(
        &get(&gateway.url("/administrator"), &[]).await,
        "/administrator is not /admin",
        "/administrator",
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upper_case_path_follows_the_configured_case_rule() {
    let upstream = Upstream::echo("echo").await;

    // Case-sensitive (default): `/ADMIN` is another path, and the upstream receives it as is.
    let sensitive = gateway(&upstream, BOB, &deny_admin_to_users(false)).await;
    assert_passed(
        &get(&sensitive.url("/ADMIN"), &[]).await,
        "/ADMIN case-sensitive",
        "/ADMIN",
    );
    assert_forbidden(&get(&sensitive.url("/admin"), &[]).await, "/admin");
    sensitive.shutdown().await;

    // Case-insensitive: `/ADMIN` and `/Admin/Users` are `/admin…`.
    let insensitive = gateway(&upstream, BOB, &deny_admin_to_users(true)).await;
    for path in ["/ADMIN", "/Admin/Users", "//aDmIn/"] {
        assert_forbidden(&get(&insensitive.url(path), &[]).await, path);
    }
    assert_passed(
        &get(&insensitive.url("/API/x"), &[]).await,
        "/API/x",
        "/API/x",
    );
    insensitive.shutdown().await;
}

/// Admins manage `/admin`, everyone reads `/api`, nobody but admins writes; bob is denied
/// `/api/secret` although the `/api` rule allows it; nobody deletes the audit log.
const RULES: &str = r#"
[[plugins.rbac.config.rules]]
roles = ["admin"]
methods = ["*"]
paths = ["/admin/**"]
effect = "allow"

[[plugins.rbac.config.rules]]
roles = ["*"]
methods = ["GET"]
paths = ["/api/**"]
effect = "allow"

[[plugins.rbac.config.rules]]
consumers = ["bob"]
methods = ["*"]
paths = ["/api/secret/**"]
effect = "deny"

[[plugins.rbac.config.rules]]
roles = ["admin"]
methods = ["DELETE"]
paths = ["/admin/audit/**"]
effect = "deny"

[[plugins.rbac.config.rules]]
anonymous = true
methods = ["GET"]
paths = ["/api/public/**"]
effect = "allow"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn admin_is_allowed_and_deny_rules_win() {
    let upstream = Upstream::echo("echo").await;
    let gateway = gateway(&upstream, ALICE, RULES).await;
    let c = client();

    assert_passed(
        &get(&gateway.url("/admin/users"), &[]).await,
        "admin reads /admin",
        "/admin/users",
    );
    let delete = send(&c, Method::DELETE, &gateway.url("/admin/users/7"), &[], "").await;
    assert_passed(&delete, "admin deletes a user", "/admin/users/7");
    assert_eq!(delete.json()["method"], "DELETE");
    assert_passed(
        &get(&gateway.url("//admin//audit/1"), &[]).await,
        "admin reads the audit log",
        "/admin/audit/1",
    );
    let audit = send(&c, Method::DELETE, &gateway.url("/admin/audit/1"), &[], "").await;
    assert_forbidden(&audit, "deny beats the admin's allow-all");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn default_deny_and_deny_precedence_for_a_user() {
    let upstream = Upstream::echo("echo").await;
    let gateway = gateway(&upstream, BOB, RULES).await;
    let c = client();

    assert_passed(
        &get(&gateway.url("/api/orders"), &[]).await,
        "GET /api",
        "/api/orders",
    );
    assert_forbidden(
        &get(&gateway.url("/api/secret/1"), &[]).await,
        "deny rule beats the /api allow rule",
    );
    assert_forbidden(
        &get(&gateway.url("/api/x/../secret/1"), &[]).await,
        "deny rule on the normalised path",
    );
    assert_forbidden(
        &send(&c, Method::POST, &gateway.url("/api/orders"), &[], "{}").await,
        "no rule allows POST",
    );
    assert_forbidden(
        &get(&gateway.url("/admin/users"), &[]).await,
        "not an admin",
    );
    assert_forbidden(
        &get(&gateway.url("/elsewhere"), &[]).await,
        "no rule at all",
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_without_consumer_is_forbidden_unless_anonymous_allowed() {
    let upstream = Upstream::echo("echo").await;
    let gateway = gateway(&upstream, ANONYMOUS, RULES).await;

    let reply = get(&gateway.url("/api/orders"), &[]).await;
    assert_forbidden(&reply, "`*` needs a consumer");
    assert_forbidden(
        &get(&gateway.url("/admin/users"), &[]).await,
        "anonymous admin",
    );
    assert_passed(
        &get(&gateway.url("/api/public/doc"), &[]).await,
        "anonymous rule",
        "/api/public/doc",
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rules_fail_the_load_naming_the_field() {
    let upstream = Upstream::echo("echo").await;
    let config = format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{}"]

[plugins.rbac]
module = "{{plugins}}/rbac.wasm"

[[plugins.rbac.config.rules]]
roles = ["admin"]
methods = ["GET"]
paths = ["/admin/**/x"]
effect = "permit"

[[routes]]
name = "all"
path_prefix = "/"
upstream = "echo"
chain = ["rbac"]
"#,
        upstream.target()
    );
    let err = match Gateway::try_start(&config).await {
        Ok(_) => panic!("a bad rbac config must fail the load"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("rules[0].paths[0]"), "{err}");
    assert!(err.contains("rules[0].effect"), "{err}");
}
