//! An operator routes by path prefix, exact path, host and method; unknown paths get 404 and
//! wrong methods 405 with `Allow`, both as JSON.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;

use http::{Method, StatusCode};
use proxy_support::*;
use tollgate::config::PathMatch;

#[tokio::test]
async fn routes_by_path_host_and_method() {
    let api = mock_upstream("api").await;
    let v2 = mock_upstream("v2").await;
    let health = mock_upstream("health").await;
    let tenant = mock_upstream("tenant").await;

    let mut exact = prefix("health", "/api/health", "health");
    exact.path = PathMatch::Exact("/api/health".into());
    let mut hosted = prefix("tenant", "/api", "tenant");
    hosted.hosts = vec!["*.tenant.test".into()];
    let mut read_only = prefix("docs", "/docs", "api");
    read_only.methods = vec![Method::GET, Method::HEAD];
    let config = config(
        vec![
            upstream("api", &[api]),
            upstream("v2", &[v2]),
            upstream("health", &[health]),
            upstream("tenant", &[tenant]),
        ],
        vec![
            prefix("api", "/api", "api"),
            prefix("v2", "/api/v2", "v2"),
            exact,
            hosted,
            read_only,
        ],
    );
    let gateway = Gateway::start(table(&config, HashMap::new())).await;
    let client = client();

    let served_by = |answer: &Answer| answer.json()["upstream"].as_str().unwrap().to_owned();
    for (path, expected) in [
        ("/api", "api"),
        ("/api/users", "api"),
        ("/api/v2/users", "v2"),
        ("/api/v2", "v2"),
        ("/api/v20", "api"),
        ("/api/health", "health"),
        ("/api/health/deep", "api"),
    ] {
        let answer = send(&client, request(Method::GET, &gateway.url(path), &[])).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(served_by(&answer), expected, "{path}");
        assert_eq!(
            answer.json()["path"],
            path,
            "the upstream sees the routed path"
        );
    }

    let hosted = send(
        &client,
        request(
            Method::GET,
            &gateway.url("/api/x?a=1"),
            &[("host", "EU.Tenant.test:8080")],
        ),
    )
    .await;
    assert_eq!(served_by(&hosted), "tenant");
    assert_eq!(hosted.json()["query"], "a=1");
    assert_eq!(
        hosted.json()["headers"]["host"],
        "EU.Tenant.test:8080",
        "Host is kept"
    );

    let missing = send(&client, request(Method::GET, &gateway.url("/apix"), &[])).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"], "no_route");

    let wrong = send(&client, request(Method::POST, &gateway.url("/docs/a"), &[])).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers["allow"], "GET, HEAD");
    assert_eq!(wrong.json()["error"], "method_not_allowed");
    assert!(wrong.headers.contains_key("x-request-id"));
}
