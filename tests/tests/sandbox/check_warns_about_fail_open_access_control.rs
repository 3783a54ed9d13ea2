//! `tollgate check` warns when an access-control plugin (auth, rbac, ip-filter) is `fail-open`:
//! the config loads, but a failing check would let requests through.

use tollgate_tests::expand;

#[tokio::test]
async fn check_warns_for_fail_open_auth_but_not_headers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        expand(
            r#"
[gateway]
cache_dir = "{cache}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.up]
targets = ["127.0.0.1:9"]

[plugins.gate]
module = "{plugins}/ip_filter.wasm"
on_error = "fail-open"
config = { allow = ["127.0.0.0/8"] }

[plugins.tag]
module = "{plugins}/headers.wasm"
on_error = "fail-open"
config = { request = { set = { "x-tag" = "1" } } }

[[routes]]
name = "all"
path_prefix = "/"
upstream = "up"
chain = ["gate", "tag"]
"#,
        ),
    )
    .unwrap();
    let report = tollgate::gateway::check(&path).await.unwrap();
    let warnings: Vec<_> = report
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(
        warnings[0].contains("`gate`") && warnings[0].contains("fail-open"),
        "{report}"
    );
}
