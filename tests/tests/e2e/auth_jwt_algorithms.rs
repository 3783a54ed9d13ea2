//! A client calls an API with a JWT signed by each supported algorithm; the gateway accepts it,
//! tells later plugins who the caller is and removes the token before the upstream.

#![allow(clippy::unwrap_used)]

use crate::auth_support;

use auth_support::*;
use jsonwebtoken::Algorithm;
use tollgate_tests::{Gateway, Upstream, get};

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_of_every_algorithm_is_accepted() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &jwt_plugin(), "", &[])).await;

    use Algorithm::*;
    for alg in [
        HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA,
    ] {
        let token = token(alg, &claims(), None);
        let reply = get(
            &gateway.url("/api/orders"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{alg:?}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let echo = reply.json();
        let headers = &echo["headers"];
        assert_eq!(headers["x-consumer"][0], "alice", "{alg:?}");
        assert_eq!(headers["x-roles"][0], "orders:read,orders:write", "{alg:?}");
        assert_eq!(headers["x-plan"][0], "gold", "{alg:?}");
        assert_eq!(headers["x-auth-method"][0], "jwt", "{alg:?}");
        assert!(
            headers.get("authorization").is_none(),
            "{alg:?}: token reached the upstream"
        );
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_as_a_space_separated_string_and_custom_claims() {
    let upstream = Upstream::echo("echo").await;
    let plugin = jwt_plugin().replace(
        "algorithms = [",
        "consumer_claim = \"client_id\"\nroles_claim = \"scope\"\nalgorithms = [",
    );
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &plugin, "", &[])).await;

    let mut c = claims();
    c["client_id"] = "billing-service".into();
    c["scope"] = "orders:read invoices:write".into();
    let token = token(Algorithm::ES256, &c, None);
    let reply = get(
        &gateway.url("/api/x"),
        &[("authorization", &format!("bearer {token}"))],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let echo = reply.json();
    assert_eq!(echo["headers"]["x-consumer"][0], "billing-service");
    assert_eq!(echo["headers"]["x-roles"][0], "orders:read,invoices:write");
    gateway.shutdown().await;
}
