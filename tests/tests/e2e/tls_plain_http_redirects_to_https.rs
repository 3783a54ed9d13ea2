//! A plain-HTTP listener with `plain_http = "redirect"`: every request gets a 308 to the same
//! host, normalised path and query on HTTPS (`https_port`), before routing and plugins; the
//! upstream is never called.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use tls_support::gateway_config;
use tollgate_tests::{Gateway, Upstream, get};

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_is_redirected_with_308() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(
        "plain_http = \"redirect\"\nhttps_port = 8443",
        &upstream.target(),
        "",
    ))
    .await;

    let reply = get(
        &gateway.url("/shop/./cart/../items?page=2&sort=asc"),
        &[("host", "Shop.Example:8080")],
    )
    .await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://shop.example:8443/shop/items?page=2&sort=asc")
    );
    assert_eq!(reply.json()["error"], "https_redirect");

    // POST keeps its method across a 308; the redirect does not depend on a route existing.
    let reply = tollgate_tests::send(
        &tollgate_tests::client(),
        http::Method::POST,
        &gateway.url("/no/such/route"),
        &[("host", "api.example")],
        "body",
    )
    .await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://api.example:8443/no/such/route")
    );

    // A path that breaks the path rule is refused, not reflected into a Location.
    let reply = get(
        &gateway.url("/a/%2e%2e%2f%2e%2e/etc"),
        &[("host", "x.example")],
    )
    .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert!(reply.header("location").is_none());

    // A Host that is not a host name (userinfo) is refused with 400 before anything else,
    // never turned into a redirect somewhere odd.
    let reply = get(&gateway.url("/"), &[("host", "evil.example@good.example")]).await;
    assert_eq!(reply.status, 400);
    assert!(reply.header("location").is_none());
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_https_port_is_left_out_of_the_location() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(
        "plain_http = \"redirect\"",
        &upstream.target(),
        "",
    ))
    .await;
    let reply = get(&gateway.url("/x"), &[("host", "shop.example")]).await;
    assert_eq!(reply.status, 308);
    assert_eq!(reply.header("location"), Some("https://shop.example/x"));
    gateway.shutdown().await;
}
