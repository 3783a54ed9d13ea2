//! An issuer's keys come from its JWKS URL, fetched through the gateway (`fetch = ["idp"]`) and
//! cached; a flood of tokens with unknown `kid`s makes the gateway fetch at most once per
//! cooldown, across every plugin instance.

#![allow(clippy::unwrap_used)]

use crate::auth_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_support::*;
use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tollgate_tests::{Gateway, Upstream, get};

/// A JWKS server that counts its requests.
async fn idp() -> (Upstream, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let jwks = key_file("rsa.jwks.json");
    let upstream = Upstream::start(Arc::new(move |req| {
        counter.fetch_add(1, Ordering::SeqCst);
        let jwks = jwks.clone();
        Box::pin(async move {
            let status = if req.uri().path() == "/.well-known/jwks.json" {
                200
            } else {
                404
            };
            http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(jwks)))
                .unwrap()
        })
    }))
    .await;
    (upstream, hits)
}

async fn gateway(echo: &Upstream, idp: &Upstream) -> Gateway {
    let before = format!("[upstreams.idp]\ntargets = [\"{}\"]", idp.target());
    let plugin = format!(
        r#"fetch = ["idp"]
pool_size = 4
timeout_ms = 250

[plugins.auth.config.jwt]
issuers = [{{ issuer = "{ISSUER}", audiences = ["{AUDIENCE}"], algorithms = ["RS256"], jwks_url = {{ upstream = "idp", path = "/.well-known/jwks.json", refresh_s = 300, cooldown_s = 60 }} }}]
"#
    );
    Gateway::start(&gateway_config(&echo.target(), &plugin, &before, &[])).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Tokens signed by a key the IdP never published, each with a fresh `kid`.
fn unknown_kid_tokens(n: usize) -> Vec<String> {
    let other = EncodingKey::from_rsa_pem(key_file("rsa-other.key").as_bytes()).unwrap();
    (0..n)
        .map(|i| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(format!("kid-{}-{i}", now()));
            jsonwebtoken::encode(&header, &claims(), &other).unwrap()
        })
        .collect()
}

async fn flood(gateway: &Gateway, tokens: Vec<String>) {
    let url = gateway.url("/api/orders");
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let url = url.clone();
            tokio::spawn(async move { get(&url, &[("authorization", &bearer(&t))]).await })
        })
        .collect();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_unauthorized(&reply, "", "unknown kid");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_fetched_once_and_unknown_kids_do_not_refetch() {
    let echo = Upstream::echo("echo").await;
    let (idp, hits) = idp().await;
    let gateway = gateway(&echo, &idp).await;

    let valid = token(Algorithm::RS256, &claims(), Some("rsa-1"));
    let reply = get(
        &gateway.url("/api/orders"),
        &[("authorization", &bearer(&valid))],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["headers"]["x-consumer"][0], "alice");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "first use fetches the key set"
    );

    flood(&gateway, unknown_kid_tokens(50)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "unknown kids within the cooldown fetch nothing"
    );

    // Every instance (pool of 4) still verifies good tokens: they share the fetched set.
    for _ in 0..8 {
        let reply = get(
            &gateway.url("/api/orders"),
            &[("authorization", &bearer(&valid))],
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_unknown_kids_on_a_cold_gateway_fetches_at_most_once() {
    let echo = Upstream::echo("echo").await;
    let (idp, hits) = idp().await;
    let gateway = gateway(&echo, &idp).await;

    flood(&gateway, unknown_kid_tokens(50)).await;
    assert!(
        hits.load(Ordering::SeqCst) <= 1,
        "{} fetches",
        hits.load(Ordering::SeqCst)
    );

    let valid = token(Algorithm::RS256, &claims(), Some("rsa-1"));
    let reply = get(
        &gateway.url("/api/orders"),
        &[("authorization", &bearer(&valid))],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        hits.load(Ordering::SeqCst) <= 1,
        "{} fetches",
        hits.load(Ordering::SeqCst)
    );
    gateway.shutdown().await;
}
