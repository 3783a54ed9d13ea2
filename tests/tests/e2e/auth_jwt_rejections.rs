//! Forged, expired and otherwise wrong tokens are refused with 401 (never a 5xx), with a JSON
//! body that does not echo the token, and never reach the upstream.

#![allow(clippy::unwrap_used)]

use crate::auth_support;

use auth_support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tollgate_tests::{Gateway, Upstream, get};

async fn refused(gateway: &Gateway, token: &str, why: &str) {
    let reply = get(
        &gateway.url("/api/orders"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_unauthorized(&reply, token, why);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"orders\""),
        "{why}: challenge {challenge:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_claims_are_refused() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &jwt_plugin(), "", &[])).await;
    let t = |c: serde_json::Value| token(Algorithm::RS256, &c, None);

    let mut c = claims();
    c["exp"] = (now() - 120).into(); // beyond the 30 s default leeway
    refused(&gateway, &t(c), "expired").await;

    let mut c = claims();
    c["nbf"] = (now() + 600).into();
    refused(&gateway, &t(c), "not yet valid").await;

    let mut c = claims();
    c["iss"] = "https://evil.test".into();
    refused(&gateway, &t(c), "wrong iss").await;

    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    refused(&gateway, &t(c), "no iss").await;

    let mut c = claims();
    c["aud"] = "another-api".into();
    refused(&gateway, &t(c), "wrong aud").await;

    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    refused(&gateway, &t(c), "no aud").await;

    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    refused(&gateway, &t(c), "missing exp").await;

    let mut c = claims();
    c["exp"] = (now() + 600).to_string().into();
    refused(&gateway, &t(c), "exp as a string").await;

    let mut c = claims();
    c.as_object_mut().unwrap().remove("sub");
    refused(&gateway, &t(c), "no subject").await;

    // Within the leeway is still fine: the same checks are not simply refusing everything.
    let mut c = claims();
    c["exp"] = (now() - 5).into();
    let reply = get(
        &gateway.url("/api/orders"),
        &[("authorization", &format!("Bearer {}", t(c)))],
    )
    .await;
    assert_eq!(reply.status, 200);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_and_forged_tokens_are_refused() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &jwt_plugin(), "", &[])).await;

    // alg none, in several spellings, with and without a (bogus) signature.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = unsigned(alg, &claims());
        refused(&gateway, &token, &format!("alg {alg}")).await;
        refused(
            &gateway,
            &format!("{token}c2lnbmF0dXJl"),
            &format!("alg {alg} + signature"),
        )
        .await;
    }
    // An algorithm the issuer does not list, and one nobody knows.
    let hs = token(Algorithm::RS256, &claims(), None);
    let forged = sign_raw(
        &json!({"alg": "PS384"}),
        &claims(),
        &signing_key(Algorithm::PS384),
        Algorithm::PS384,
    );
    refused(&gateway, &forged, "PS384 is not in the issuer's list").await;
    let forged = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS1"}"#),
        hs.split_once('.').unwrap().1
    );
    refused(&gateway, &forged, "unknown alg").await;

    // The RSA public key (PEM text, as a naive verifier would use it) as an HS256 secret.
    let pem = key_file("rsa.pub");
    let confused = sign_raw(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims(),
        &EncodingKey::from_secret(pem.as_bytes()),
        Algorithm::HS256,
    );
    refused(
        &gateway,
        &confused,
        "RS256 public key used as an HS256 secret",
    )
    .await;
    let der = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let confused = sign_raw(
        &json!({"alg": "HS256"}),
        &claims(),
        &EncodingKey::from_secret(&der),
        Algorithm::HS256,
    );
    refused(
        &gateway,
        &confused,
        "RS256 public key (DER) used as an HS256 secret",
    )
    .await;

    // Signed by the attacker's own key, offered in the header: never used.
    let attacker = EncodingKey::from_rsa_pem(key_file("rsa-other.key").as_bytes()).unwrap();
    let attacker_pub = key_file("rsa-other.pub");
    let attacker_der: String = attacker_pub
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (name, header) in [
        (
            "embedded jwk",
            json!({"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
        ),
        (
            "jku",
            json!({"alg": "RS256", "jku": "http://127.0.0.1:1/jwks.json", "kid": "attacker"}),
        ),
        (
            "x5u",
            json!({"alg": "RS256", "x5u": "http://127.0.0.1:1/cert.pem"}),
        ),
        ("x5c", json!({"alg": "RS256", "x5c": [attacker_der]})),
    ] {
        let forged = sign_raw(&header, &claims(), &attacker, Algorithm::RS256);
        refused(&gateway, &forged, name).await;
    }

    // Tampered tokens, for every algorithm: payload changed, signature flipped, truncated.
    use Algorithm::*;
    for alg in [
        HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA,
    ] {
        let good = token(alg, &claims(), None);
        let (input, sig) = good.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let mut c = claims();
        c["sub"] = "admin".into();
        let swapped = format!("{header}.{}.{sig}", URL_SAFE_NO_PAD.encode(c.to_string()));
        refused(&gateway, &swapped, &format!("{alg:?}: payload changed")).await;
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[0] ^= 0x01;
        let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        refused(&gateway, &flipped, &format!("{alg:?}: signature flipped")).await;
        let short = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
        );
        refused(&gateway, &short, &format!("{alg:?}: signature truncated")).await;
    }
    // Garbage of several shapes.
    for junk in [
        "",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "....",
        "eyJ.eyJ.eyJ",
        &"x".repeat(10_000),
    ] {
        let reply = get(
            &gateway.url("/api/orders"),
            &[("authorization", &format!("Bearer {junk}"))],
        )
        .await;
        assert_eq!(reply.status, 401, "junk {:?}", &junk[..junk.len().min(20)]);
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_gets_a_challenge() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(&upstream.target(), &jwt_plugin(), "", &[])).await;
    let reply = get(&gateway.url("/api/orders"), &[]).await;
    assert_unauthorized(&reply, "", "no token");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"orders\"")
    );
    assert_eq!(reply.json()["message"], "missing credentials");
    // A scheme nobody handles is a credential we cannot accept, not an anonymous call.
    let reply = get(
        &gateway.url("/api/orders"),
        &[("authorization", "Digest abc")],
    )
    .await;
    assert_unauthorized(&reply, "abc", "unknown scheme");
    gateway.shutdown().await;
}
