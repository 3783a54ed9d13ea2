//! The `auth` config: raw serde types as written in `gateway.toml` (`raw`), validated into
//! [`Settings`] (`settings`). Every problem is collected with its config path before failing.
//! This module checks the methods and their order; each method's section has a module of its
//! own (`api_key`, `jwt`, `basic`, `mtls`), sharing the identity checks of `identity`. Plain
//! Rust, unit-tested natively.

mod api_key;
mod basic;
mod identity;
mod jwt;
mod mtls;
mod raw;
mod settings;

use api_key::validate_api_key;
use basic::validate_basic;
use identity::identity;
pub use jwt::parse_jwks;
use jwt::validate_jwt;
pub use mtls::normalise_fingerprint;
use mtls::validate_mtls;
pub use raw::RawConfig;
// The settings the rest of the plugin names; the other section types are reached through
// `Settings`.
pub use settings::{BasicSettings, Identity, Issuer, JwksUrl, JwtKey, Method, Settings, User};

/// Validate a parsed config, collecting every problem (with its config path) before failing.
pub fn validate(raw: RawConfig) -> Result<Settings, String> {
    let mut errors = Vec::new();
    let e = &mut errors;

    let anonymous = raw.anonymous.map(|a| identity("anonymous", a, e));
    let api_key = raw.api_key.map(|k| validate_api_key(k, e));
    let jwt = raw.jwt.map(|j| validate_jwt(j, e));
    let basic = raw.basic.map(|b| validate_basic(b, e));
    let mtls = raw.mtls.map(|m| validate_mtls(m, e));

    let configured = |m: Method| match m {
        Method::ApiKey => api_key.is_some(),
        Method::Jwt => jwt.is_some(),
        Method::Basic => basic.is_some(),
        Method::Mtls => mtls.is_some(),
    };
    let methods = method_order(raw.methods, configured, e);
    if methods.is_empty() && e.is_empty() {
        e.push("no method configured: add `api_key`, `jwt`, `basic` or `mtls`".into());
    }
    if raw.realm.is_empty()
        || raw.realm.contains(['"', '\\'])
        || raw.realm.chars().any(char::is_control)
    {
        e.push(
            "realm: must be non-empty, without quotes, backslashes or control characters".into(),
        );
    }

    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Settings {
        methods,
        strip_credentials: raw.strip_credentials,
        realm: raw.realm,
        anonymous,
        api_key,
        jwt,
        basic,
        mtls,
    })
}

/// `methods`: when unset, every configured method in the order `mtls`, `api_key`, `jwt`,
/// `basic`; when set, known and configured methods, each once, and every configured one listed.
fn method_order(
    names: Option<Vec<String>>,
    configured: impl Fn(Method) -> bool,
    e: &mut Vec<String>,
) -> Vec<Method> {
    let all = [Method::Mtls, Method::ApiKey, Method::Jwt, Method::Basic];
    let Some(names) = names else {
        return all.into_iter().filter(|m| configured(*m)).collect();
    };
    let mut methods = Vec::new();
    for name in names {
        match all.iter().find(|m| m.name() == name) {
            None => e.push(format!(
                "methods: unknown method {name:?} (expected api_key, jwt, basic or mtls)"
            )),
            Some(m) if methods.contains(m) => e.push(format!("methods: {name:?} is listed twice")),
            Some(m) if !configured(*m) => e.push(format!(
                "methods: {name:?} is listed but `{name}` is not configured"
            )),
            Some(m) => methods.push(*m),
        }
    }
    for m in all {
        if configured(m) && !methods.contains(&m) {
            e.push(format!(
                "{}: configured but not listed in `methods`",
                m.name()
            ));
        }
    }
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Settings, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string())?;
        validate(raw)
    }

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn api_key_config() {
        let s = parse(serde_json::json!({
            "api_key": { "query": "key", "keys": [
                { "hash": format!("sha256:{HASH}"), "consumer": "alice", "roles": ["admin"], "plan": "gold" }
            ]},
            "anonymous": { "consumer": "anonymous" },
        }))
        .expect("valid");
        assert_eq!(s.methods, vec![Method::ApiKey]);
        let k = s.api_key.expect("api key");
        assert_eq!(k.header.as_deref(), Some("x-api-key"));
        assert_eq!(k.query.as_deref(), Some("key"));
        assert_eq!(k.keys[0].1.plan.as_deref(), Some("gold"));
        assert!(s.strip_credentials);
        assert_eq!(
            s.anonymous.map(|a| a.consumer).as_deref(),
            Some("anonymous")
        );
    }

    #[test]
    fn every_error_is_named() {
        let err = parse(serde_json::json!({
            "methods": ["jwt", "oauth"],
            "api_key": { "keys": [{ "hash": "abc", "consumer": "" }] },
            "jwt": { "issuers": [{ "issuer": "i", "algorithms": ["none", "HS256"],
                "keys": [{ "secret": "short" }] }] },
        }))
        .expect_err("invalid");
        for needle in [
            "methods: unknown method \"oauth\"",
            "api_key: configured but not listed in `methods`",
            "api_key.keys[0].hash:",
            "api_key.keys[0].consumer:",
            "jwt.issuers[0].algorithms: `none` is never accepted",
            "jwt.issuers[0].keys[0]: an HMAC secret must be at least 32 bytes",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn a_key_that_fits_no_algorithm_is_an_error() {
        let err = parse(serde_json::json!({
            "jwt": { "issuers": [{ "issuer": "i", "algorithms": ["RS256"],
                "keys": [{ "secret": "0123456789abcdef0123456789abcdef" }] }] },
        }))
        .expect_err("invalid");
        assert!(
            err.contains("verifies none of the listed algorithms"),
            "{err}"
        );
    }

    #[test]
    fn empty_config_is_refused() {
        let err = parse(serde_json::json!({})).expect_err("invalid");
        assert!(err.contains("no method configured"), "{err}");
    }

    #[test]
    fn fingerprints_normalise() {
        let colon = "AB:".repeat(31) + "AB";
        assert_eq!(normalise_fingerprint(&colon), Some("ab".repeat(32)));
        assert_eq!(normalise_fingerprint("abc"), None);
    }
}
