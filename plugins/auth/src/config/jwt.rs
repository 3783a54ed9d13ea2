//! `jwt`: the header tokens come in and the trusted issuers: algorithms, claims, keys (inline,
//! an inline JWKS or a JWKS fetched from an upstream), and JWKS documents themselves.

use std::collections::BTreeSet;

use serde_json::Value;

use super::identity::is_token;
use super::raw::{RawIssuer, RawJwksUrl, RawJwt, RawJwtKey};
use super::settings::{Issuer, JwksUrl, JwtKey, JwtSettings};
use crate::host_key::HostKey;
use crate::keys::{Alg, KeyMaterial, hmac_key};

/// `jwt`: a valid header name and at least one issuer, each listed once.
pub(super) fn validate_jwt(raw: RawJwt, e: &mut Vec<String>) -> JwtSettings {
    if !is_token(&raw.header) {
        e.push(format!("jwt.header: invalid header name {:?}", raw.header));
    }
    if raw.issuers.is_empty() {
        e.push("jwt.issuers: at least one issuer is needed".into());
    }
    let mut names = BTreeSet::new();
    let issuers = raw
        .issuers
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            if !names.insert(raw.issuer.clone()) {
                e.push(format!(
                    "jwt.issuers[{i}].issuer: {:?} is listed twice",
                    raw.issuer
                ));
            }
            validate_issuer(&format!("jwt.issuers[{i}]"), raw, e)
        })
        .collect();
    JwtSettings {
        header: raw.header.to_ascii_lowercase(),
        issuers,
    }
}

/// One `jwt.issuers[i]`: every key must verify one of its algorithms, and it needs keys from
/// `keys`, `jwks` or `jwks_url`.
fn validate_issuer(at: &str, raw: RawIssuer, e: &mut Vec<String>) -> Issuer {
    if raw.issuer.is_empty() {
        e.push(format!("{at}.issuer: must not be empty"));
    }
    let algorithms = issuer_algorithms(at, &raw.algorithms, e);
    if raw.leeway_s > 600 {
        e.push(format!("{at}.leeway_s: at most 600"));
    }
    for (name, claim) in [
        ("consumer_claim", &raw.consumer_claim),
        ("roles_claim", &raw.roles_claim),
        ("plan_claim", &raw.plan_claim),
    ] {
        if claim.is_empty() {
            e.push(format!("{at}.{name}: must not be empty"));
        }
    }

    let mut keys = inline_keys(at, raw.keys, e);
    if let Some(jwks) = &raw.jwks {
        inline_jwks(at, jwks, &mut keys, e);
    }
    check_key_algorithms(at, &keys, &algorithms, e);

    let jwks_url = raw.jwks_url.map(|u| jwks_url(at, u, e));
    if keys.is_empty() && jwks_url.is_none() {
        e.push(format!("{at}: no keys: give `keys`, `jwks` or `jwks_url`"));
    }
    Issuer {
        issuer: raw.issuer,
        algorithms,
        audiences: raw.audiences,
        leeway_s: raw.leeway_s,
        require_exp: raw.require_exp,
        consumer_claim: raw.consumer_claim,
        roles_claim: raw.roles_claim,
        plan_claim: raw.plan_claim,
        keys,
        jwks_url,
    }
}

/// `algorithms`: known ones, never `none`, each kept once.
fn issuer_algorithms(at: &str, names: &[String], e: &mut Vec<String>) -> Vec<Alg> {
    let mut algorithms = Vec::new();
    for name in names {
        if Alg::is_none(name) {
            e.push(format!("{at}.algorithms: `none` is never accepted"));
        } else {
            match Alg::parse(name) {
                Some(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
                Some(_) => {}
                None => e.push(format!(
                    "{at}.algorithms: unknown algorithm {name:?} (HS256/384/512, RS256/384/512, \
                     PS256/384/512, ES256, ES384, EdDSA)"
                )),
            }
        }
    }
    if names.is_empty() {
        e.push(format!("{at}.algorithms: list the accepted algorithms"));
    }
    algorithms
}

/// `keys`: each exactly one of `pem`, `jwk`, `secret`, `secret_base64`; its `kid` given or the
/// JWK's.
fn inline_keys(at: &str, raw: Vec<RawJwtKey>, e: &mut Vec<String>) -> Vec<JwtKey> {
    let mut keys = Vec::new();
    for (i, k) in raw.into_iter().enumerate() {
        let kat = format!("{at}.keys[{i}]");
        let given = [
            k.pem.is_some(),
            k.jwk.is_some(),
            k.secret.is_some(),
            k.secret_base64.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            e.push(format!(
                "{kat}: give exactly one of `pem`, `jwk`, `secret`, `secret_base64`"
            ));
            continue;
        }
        let parsed = if let Some(pem) = &k.pem {
            KeyMaterial::from_pem(pem).map(|key| (key, None))
        } else if let Some(jwk) = &k.jwk {
            KeyMaterial::from_jwk(jwk, true)
        } else if let Some(secret) = k.secret {
            hmac_key(secret.into_bytes()).map(|key| (key, None))
        } else if let Some(b64) = &k.secret_base64 {
            decode_any_base64(b64)
                .ok_or_else(|| "secret_base64: not base64".to_string())
                .and_then(hmac_key)
                .map(|key| (key, None))
        } else {
            continue;
        };
        match parsed {
            Ok((key, alg)) => {
                let kid = k.kid.or_else(|| {
                    k.jwk
                        .as_ref()
                        .and_then(|j| j.get("kid"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                keys.push(JwtKey {
                    kid,
                    alg,
                    key,
                    host: HostKey::default(),
                })
            }
            Err(msg) => e.push(format!("{kat}: {msg}")),
        }
    }
    keys
}

/// `jwks`: a JWKS document (or its text) whose usable keys join `keys`; skipped ones are errors.
fn inline_jwks(at: &str, jwks: &Value, keys: &mut Vec<JwtKey>, e: &mut Vec<String>) {
    let parsed = match jwks {
        Value::String(text) => serde_json::from_str(text).map_err(|e| format!("not JSON: {e}")),
        other => Ok(other.clone()),
    };
    match parsed.and_then(|v| parse_jwks(&v, true)) {
        Ok((found, skipped)) => {
            for msg in skipped {
                e.push(format!("{at}.jwks: {msg}"));
            }
            keys.extend(found);
        }
        Err(msg) => e.push(format!("{at}.jwks: {msg}")),
    }
}

/// Every key must verify at least one of the listed algorithms (and its own `alg`, if any).
fn check_key_algorithms(at: &str, keys: &[JwtKey], algorithms: &[Alg], e: &mut Vec<String>) {
    for (i, key) in keys.iter().enumerate() {
        if !algorithms
            .iter()
            .any(|alg| key.key.supports(*alg) && key.alg.is_none_or(|a| a == *alg))
        {
            e.push(format!(
                "{at}: key #{i} ({}{}) verifies none of the listed algorithms",
                key.key.family(),
                key.kid
                    .as_deref()
                    .map(|k| format!(", kid {k:?}"))
                    .unwrap_or_default()
            ));
        }
    }
}

/// `jwks_url`: an upstream, an absolute path and positive refresh and cooldown periods.
fn jwks_url(at: &str, u: RawJwksUrl, e: &mut Vec<String>) -> JwksUrl {
    if u.upstream.is_empty() {
        e.push(format!(
            "{at}.jwks_url.upstream: must name an upstream from `fetch`"
        ));
    }
    if !u.path.starts_with('/') {
        e.push(format!("{at}.jwks_url.path: must start with `/`"));
    }
    if u.refresh_s == 0 {
        e.push(format!("{at}.jwks_url.refresh_s: must be positive"));
    }
    if u.cooldown_s == 0 {
        e.push(format!("{at}.jwks_url.cooldown_s: must be positive"));
    }
    JwksUrl {
        upstream: u.upstream,
        path: u.path,
        refresh_ms: u.refresh_s.saturating_mul(1000),
        cooldown_ms: u.cooldown_s.saturating_mul(1000),
        timeout_ms: u.timeout_ms,
    }
}

/// The keys of a JWKS document. Keys that cannot be used (`use: enc`, unknown types, or
/// symmetric keys when not allowed) are skipped and reported in the second list.
pub fn parse_jwks(
    doc: &Value,
    allow_symmetric: bool,
) -> Result<(Vec<JwtKey>, Vec<String>), String> {
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("expected a JSON object with a `keys` array")?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, jwk) in list.iter().enumerate() {
        if jwk
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        match KeyMaterial::from_jwk(jwk, allow_symmetric) {
            Ok((key, alg)) => keys.push(JwtKey {
                kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned),
                alg,
                key,
                host: HostKey::default(),
            }),
            Err(msg) => skipped.push(format!("keys[{i}]: {msg}")),
        }
    }
    Ok((keys, skipped))
}

/// Standard or URL-safe base64, padded or not.
fn decode_any_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let text = text.trim();
    STANDARD
        .decode(text)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
}
