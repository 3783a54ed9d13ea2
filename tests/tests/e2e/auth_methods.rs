//! Several methods on one route: basic auth with bcrypt hashes, mTLS identity from the host's
//! TLS context, API keys and JWT, tried in the configured order; anonymous access only when
//! configured.

#![allow(clippy::unwrap_used)]

use crate::auth_support;

use auth_support::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::Algorithm;
use tollgate_tests::{Gateway, Upstream, get};

/// `correct horse`, bcrypt cost 10, made by libxcrypt (Python's `crypt`), not by the plugin.
const CAROL_HASH: &str = "$2b$10$4dll2hojYB1L/UW858E3JOe7ieCRSbuqzEMB.71Es3UgNbbqRpJDq";
const API_KEY: &str = "tg_test_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";
const FINGERPRINT: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

fn plugin(methods: &str, extra: &str) -> String {
    format!(
        // bcrypt cost 10 takes ~100 ms inside Wasm; on a loaded 2-core CI machine it can take
        // several times that, and this scenario is about auth answers, not deadlines.
        r#"timeout_ms = 3000

[plugins.auth.config]
methods = {methods}
realm = "shop"
{extra}

[plugins.auth.config.api_key]
keys = [{{ hash = "{key}", consumer = "ci-bot", roles = ["deploy"] }}]

[plugins.auth.config.basic]
users = [{{ username = "carol", password_hash = "{CAROL_HASH}", roles = ["support"], plan = "free" }}]

[[plugins.auth.config.mtls.identities]]
subject = "CN=billing,O=Acme"
consumer = "billing-service"
roles = ["billing"]

[[plugins.auth.config.mtls.identities]]
fingerprint = "{FINGERPRINT}"
consumer = "edge-proxy"

[[plugins.auth.config.jwt.issuers]]
issuer = "{ISSUER}"
algorithms = ["HS256"]
keys = [{{ secret = "{SECRET}" }}]
"#,
        key = key_hash(API_KEY),
    )
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// A recorder before `auth` that sets the TLS identity the host would set.
fn tls(context: &str) -> String {
    format!(
        r#"[plugins.tls]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "tls", set_context = {{ {context} }} }}"#
    )
}

const ALL: &str = r#"["mtls", "api_key", "jwt", "basic"]"#;

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_with_a_bcrypt_hash() {
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(ALL, ""),
        "",
        &[],
    ))
    .await;

    for round in 0..3 {
        // The second and third calls are served from the instance's cache of good checks.
        let reply = get(
            &gateway.url("/api/tickets"),
            &[("authorization", &basic("carol", "correct horse"))],
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "round {round}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let echo = reply.json();
        assert_eq!(echo["headers"]["x-consumer"][0], "carol");
        assert_eq!(echo["headers"]["x-roles"][0], "support");
        assert_eq!(echo["headers"]["x-plan"][0], "free");
        assert_eq!(echo["headers"]["x-auth-method"][0], "basic");
        assert!(
            echo["headers"].get("authorization").is_none(),
            "password reached the upstream"
        );
    }
    for (user, password) in [
        ("carol", "wrong horse"),
        ("mallory", "correct horse"),
        ("carol", ""),
    ] {
        let reply = get(
            &gateway.url("/api/tickets"),
            &[("authorization", &basic(user, password))],
        )
        .await;
        assert_unauthorized(&reply, &STANDARD.encode(format!("{user}:{password}")), user);
        assert_eq!(reply.json()["message"], "invalid username or password");
        let challenges: Vec<_> = reply.headers.get_all("www-authenticate").iter().collect();
        assert!(
            challenges
                .iter()
                .any(|c| c.to_str().unwrap() == "Basic realm=\"shop\", charset=\"UTF-8\""),
            "{challenges:?}"
        );
    }
    let reply = get(
        &gateway.url("/api/tickets"),
        &[("authorization", "Basic !!!")],
    )
    .await;
    assert_unauthorized(&reply, "", "malformed basic");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_identity_from_the_host_context_is_mapped() {
    let upstream = Upstream::echo("echo").await;
    let by_subject = tls(r#""tls.client.subject" = "CN=billing,O=Acme""#);
    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(ALL, ""),
        &by_subject,
        &["tls"],
    ))
    .await;
    let reply = get(&gateway.url("/api/invoices"), &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["headers"]["x-consumer"][0], "billing-service");
    assert_eq!(reply.json()["headers"]["x-auth-method"][0], "mtls");
    gateway.shutdown().await;

    let by_fingerprint = tls(&format!(
        r#""tls.client.subject" = "CN=unknown", "tls.client.fingerprint" = "{}""#,
        FINGERPRINT.replace(':', "").to_lowercase()
    ));
    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(ALL, ""),
        &by_fingerprint,
        &["tls"],
    ))
    .await;
    let reply = get(&gateway.url("/api/invoices"), &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["headers"]["x-consumer"][0], "edge-proxy");
    gateway.shutdown().await;

    // A certificate the config does not know is a present-but-invalid credential: 401, even
    // though a valid API key follows.
    let stranger = tls(r#""tls.client.subject" = "CN=stranger""#);
    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(ALL, ""),
        &stranger,
        &["tls"],
    ))
    .await;
    let reply = get(&gateway.url("/api/invoices"), &[("x-api-key", API_KEY)]).await;
    assert_unauthorized(&reply, "", "unknown certificate");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_method_with_a_credential_wins() {
    let upstream = Upstream::echo("echo").await;
    let jwt = token(Algorithm::HS256, &claims(), None);
    let both = [
        ("x-api-key", API_KEY),
        ("authorization", &format!("Bearer {jwt}")),
    ];

    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(r#"["api_key", "jwt", "basic", "mtls"]"#, ""),
        "",
        &[],
    ))
    .await;
    let echo = get(&gateway.url("/api/x"), &both).await.json();
    assert_eq!(echo["headers"]["x-auth-method"][0], "api_key");
    assert_eq!(echo["headers"]["x-consumer"][0], "ci-bot");
    assert!(
        echo["headers"].get("authorization").is_none()
            && echo["headers"].get("x-api-key").is_none()
    );
    gateway.shutdown().await;

    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(r#"["jwt", "api_key", "basic", "mtls"]"#, ""),
        "",
        &[],
    ))
    .await;
    let echo = get(&gateway.url("/api/x"), &both).await.json();
    assert_eq!(echo["headers"]["x-auth-method"][0], "jwt");
    assert_eq!(echo["headers"]["x-consumer"][0], "alice");

    // An invalid first credential is a 401: no fall-through to the valid API key.
    let reply = get(
        &gateway.url("/api/x"),
        &[
            ("x-api-key", API_KEY),
            ("authorization", "Bearer not.a.token"),
        ],
    )
    .await;
    assert_unauthorized(&reply, "not.a.token", "invalid first credential");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_access_only_when_configured() {
    let upstream = Upstream::echo("echo").await;
    let anon = r#"anonymous = { consumer = "anonymous", roles = [] }"#;
    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(ALL, anon),
        "",
        &[],
    ))
    .await;
    let reply = get(&gateway.url("/api/catalog"), &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let echo = reply.json();
    assert_eq!(echo["headers"]["x-consumer"][0], "anonymous");
    assert_eq!(echo["headers"]["x-auth-method"][0], "anonymous");
    // A wrong credential is still refused: anonymous is for callers without one.
    let reply = get(&gateway.url("/api/catalog"), &[("x-api-key", "guess")]).await;
    assert_unauthorized(&reply, "guess", "wrong key with anonymous on");
    let reply = get(
        &gateway.url("/api/catalog"),
        &[("authorization", &basic("carol", "nope"))],
    )
    .await;
    assert_unauthorized(&reply, "", "wrong password with anonymous on");
    gateway.shutdown().await;

    let gateway = Gateway::start(&gateway_config(
        &upstream.target(),
        &plugin(ALL, ""),
        "",
        &[],
    ))
    .await;
    let reply = get(&gateway.url("/api/catalog"), &[]).await;
    assert_unauthorized(&reply, "", "anonymous not configured");
    gateway.shutdown().await;
}
