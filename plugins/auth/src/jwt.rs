//! JWT (JWS compact) parsing and validation. Keys come only from the config or the issuer's
//! configured key set: the `jwk`, `jku`, `x5u` and `x5c` header parameters are never read.
//! Signature checks go to the host (`host_key.rs`); built natively they run in RustCrypto, so
//! this is unit-tested natively.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::config::{Identity, Issuer, JwtKey};
use crate::keys::Alg;

/// Longest token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// At most this many candidate keys are tried for one token (bounds the CPU an attacker can
/// make one request cost when a key set has many keys without `kid`).
pub const MAX_CANDIDATES: usize = 4;

/// Why a token was refused. The messages go to the client: they never contain the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    AlgNone,
    AlgUnsupported,
    AlgNotAllowed,
    CriticalHeader,
    UnknownIssuer,
    NoKey,
    BadSignature,
    Expired,
    NotYetValid,
    MissingExp,
    BadAudience,
    BadClaimType,
    NoConsumer,
}

impl JwtError {
    /// A short message for the 401 body.
    pub fn message(self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed token",
            JwtError::AlgNone => "unsigned tokens (alg none) are not accepted",
            JwtError::AlgUnsupported => "unsupported token algorithm",
            JwtError::AlgNotAllowed => "token algorithm not allowed for this issuer",
            JwtError::CriticalHeader => "token has critical header parameters",
            JwtError::UnknownIssuer => "token issuer not trusted",
            JwtError::NoKey => "no key for this token",
            JwtError::BadSignature => "invalid token signature",
            JwtError::Expired => "token expired",
            JwtError::NotYetValid => "token not yet valid",
            JwtError::MissingExp => "token has no expiry",
            JwtError::BadAudience => "token audience not accepted",
            JwtError::BadClaimType => "token claims have the wrong type",
            JwtError::NoConsumer => "token has no subject",
        }
    }
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct Token<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, JwtError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// Split and decode a compact JWS. Refuses `alg: none` (any case), unknown algorithms and
/// `crit` headers (we implement no extensions, RFC 7515 §4.1.11).
pub fn parse(token: &str) -> Result<Token<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header = object(&b64(h)?)?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    if Alg::is_none(alg_name) {
        return Err(JwtError::AlgNone);
    }
    let alg = Alg::parse(alg_name).ok_or(JwtError::AlgUnsupported)?;
    if header.contains_key("crit") {
        return Err(JwtError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(JwtError::Malformed),
    };
    let claims = object(&b64(p)?)?;
    let signature = b64(s)?;
    if signature.is_empty() {
        return Err(JwtError::BadSignature);
    }
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(JwtError::Malformed)?;
    Ok(Token {
        alg,
        kid,
        claims,
        signing_input,
        signature,
    })
}

/// The configured issuer named by the token's `iss` (read before verification only to choose
/// the issuer's keys and rules), with the token's algorithm checked against its list.
pub fn issuer_for<'i>(
    token: &Token<'_>,
    issuers: &'i [Issuer],
) -> Result<(usize, &'i Issuer), JwtError> {
    let iss = match token.claims.get("iss") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(JwtError::BadClaimType),
        None => return Err(JwtError::UnknownIssuer),
    };
    let (index, issuer) = issuers
        .iter()
        .enumerate()
        .find(|(_, i)| i.issuer == *iss)
        .ok_or(JwtError::UnknownIssuer)?;
    if !issuer.algorithms.contains(&token.alg) {
        return Err(JwtError::AlgNotAllowed);
    }
    Ok((index, issuer))
}

/// Whether `key` may verify this token: the right family for the algorithm, the JWK's own
/// `alg` (if any) equal to it, and the same `kid` when both have one.
pub fn key_fits(key: &JwtKey, token: &Token<'_>) -> bool {
    key.key.supports(token.alg)
        && key.alg.is_none_or(|a| a == token.alg)
        && match (&token.kid, &key.kid) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        }
}

/// Verify the signature with the first fitting keys. `Err(NoKey)` when none fits.
pub fn verify_with<'k>(
    token: &Token<'_>,
    keys: impl IntoIterator<Item = &'k JwtKey>,
) -> Result<(), JwtError> {
    let mut tried = 0;
    for key in keys
        .into_iter()
        .filter(|k| key_fits(k, token))
        .take(MAX_CANDIDATES)
    {
        tried += 1;
        if key.host.verify(
            &key.key,
            key.alg,
            token.alg,
            token.signing_input.as_bytes(),
            &token.signature,
        ) {
            return Ok(());
        }
    }
    if tried == 0 {
        Err(JwtError::NoKey)
    } else {
        Err(JwtError::BadSignature)
    }
}

/// A NumericDate claim: absent, or a JSON number (a string is refused).
fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or(JwtError::BadClaimType),
        Some(_) => Err(JwtError::BadClaimType),
    }
}

/// Check the registered claims of a verified token and map it to an identity.
pub fn check_claims(
    issuer: &Issuer,
    claims: &Map<String, Value>,
    now_s: u64,
) -> Result<Identity, JwtError> {
    let now = now_s as f64;
    let leeway = issuer.leeway_s as f64;
    let exp = numeric(claims, "exp")?;
    let nbf = numeric(claims, "nbf")?;
    numeric(claims, "iat")?;
    match exp {
        None if issuer.require_exp => return Err(JwtError::MissingExp),
        // RFC 7519 §4.1.4: the current time must be before `exp`.
        Some(exp) if now >= exp + leeway => return Err(JwtError::Expired),
        _ => {}
    }
    if let Some(nbf) = nbf
        && now + leeway < nbf
    {
        return Err(JwtError::NotYetValid);
    }
    if !issuer.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => issuer.audiences.contains(aud),
            Some(Value::Array(list)) => list.iter().any(|a| {
                a.as_str()
                    .is_some_and(|a| issuer.audiences.iter().any(|w| w == a))
            }),
            Some(_) => return Err(JwtError::BadClaimType),
            None => false,
        };
        if !ok {
            return Err(JwtError::BadAudience);
        }
    }
    let consumer = match claims.get(&issuer.consumer_claim) {
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => s.clone(),
        Some(Value::String(_)) | None => return Err(JwtError::NoConsumer),
        Some(_) => return Err(JwtError::BadClaimType),
    };
    let roles = match claims.get(&issuer.roles_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => split_roles(s),
        Some(Value::Array(list)) => {
            let mut roles = Vec::new();
            for r in list {
                roles.extend(split_roles(r.as_str().ok_or(JwtError::BadClaimType)?));
            }
            roles
        }
        Some(_) => return Err(JwtError::BadClaimType),
    };
    let plan = match claims.get(&issuer.plan_claim) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.chars().any(char::is_control) => Some(s.clone()),
        Some(_) => return Err(JwtError::BadClaimType),
    };
    Ok(Identity {
        consumer,
        roles,
        plan,
    })
}

/// Roles from a space- or comma-separated string; control characters are dropped with the role.
fn split_roles(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|r| !r.is_empty() && !r.chars().any(char::is_control))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyMaterial;
    use hmac::{Hmac, Mac};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn issuer() -> Issuer {
        Issuer {
            issuer: "https://idp".into(),
            algorithms: vec![Alg::HS256],
            audiences: vec!["api".into()],
            leeway_s: 10,
            require_exp: true,
            consumer_claim: "sub".into(),
            roles_claim: "roles".into(),
            plan_claim: "plan".into(),
            keys: vec![JwtKey {
                kid: Some("k1".into()),
                alg: None,
                key: KeyMaterial::Hmac(SECRET.to_vec()),
                host: Default::default(),
            }],
            jwks_url: None,
        }
    }

    fn sign(header: Value, claims: Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac =
            <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(SECRET).expect("key");
        mac.update(format!("{h}.{p}").as_bytes());
        format!(
            "{h}.{p}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn validate(token: &str, now: u64) -> Result<Identity, JwtError> {
        let issuers = [issuer()];
        let t = parse(token)?;
        let (_, iss) = issuer_for(&t, &issuers)?;
        verify_with(&t, &iss.keys)?;
        check_claims(iss, &t.claims, now)
    }

    fn claims() -> Value {
        serde_json::json!({"iss": "https://idp", "aud": "api", "sub": "alice", "exp": 1000,
            "roles": "read, write", "plan": "gold"})
    }

    #[test]
    fn valid_token_maps_claims() {
        let id = validate(
            &sign(serde_json::json!({"alg": "HS256", "kid": "k1"}), claims()),
            500,
        )
        .expect("valid");
        assert_eq!(id.consumer, "alice");
        assert_eq!(id.roles, vec!["read", "write"]);
        assert_eq!(id.plan.as_deref(), Some("gold"));
    }

    #[test]
    fn time_and_audience() {
        let h = serde_json::json!({"alg": "HS256"});
        assert!(
            validate(&sign(h.clone(), claims()), 1005).is_ok(),
            "within leeway"
        );
        assert_eq!(
            validate(&sign(h.clone(), claims()), 1010),
            Err(JwtError::Expired)
        );
        let mut c = claims();
        c["nbf"] = 600.into();
        assert_eq!(
            validate(&sign(h.clone(), c.clone()), 500),
            Err(JwtError::NotYetValid)
        );
        assert!(validate(&sign(h.clone(), c), 595).is_ok());
        let mut c = claims();
        c["exp"] = "1000".into();
        assert_eq!(
            validate(&sign(h.clone(), c), 500),
            Err(JwtError::BadClaimType)
        );
        let mut c = claims();
        c.as_object_mut().expect("object").remove("exp");
        assert_eq!(
            validate(&sign(h.clone(), c), 500),
            Err(JwtError::MissingExp)
        );
        let mut c = claims();
        c["aud"] = serde_json::json!(["other", "api"]);
        assert!(validate(&sign(h.clone(), c.clone()), 500).is_ok());
        c["aud"] = "other".into();
        assert_eq!(validate(&sign(h, c), 500), Err(JwtError::BadAudience));
    }

    #[test]
    fn header_attacks() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = sign(serde_json::json!({"alg": alg}), claims());
            assert_eq!(validate(&t, 500), Err(JwtError::AlgNone));
            // Also with the signature stripped, as real attacks send it.
            let unsigned = format!("{}.", t.rsplit_once('.').expect("dots").0);
            assert_eq!(validate(&unsigned, 500), Err(JwtError::AlgNone));
        }
        let t = sign(serde_json::json!({"alg": "HS384"}), claims());
        assert_eq!(validate(&t, 500), Err(JwtError::AlgNotAllowed));
        let t = sign(
            serde_json::json!({"alg": "HS256", "kid": "other"}),
            claims(),
        );
        assert_eq!(validate(&t, 500), Err(JwtError::NoKey));
        let t = sign(serde_json::json!({"alg": "HS256", "crit": ["x"]}), claims());
        assert_eq!(validate(&t, 500), Err(JwtError::CriticalHeader));
        let mut t = sign(serde_json::json!({"alg": "HS256"}), claims());
        t.push('A');
        assert!(validate(&t, 500).is_err());
        assert_eq!(validate("a.b", 500).map(|_| ()), Err(JwtError::Malformed));
        assert_eq!(
            validate("a.b.c.d", 500).map(|_| ()),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn roles_as_array_or_string() {
        assert_eq!(split_roles("a b,c,, d"), vec!["a", "b", "c", "d"]);
        let mut c = claims();
        c["roles"] = serde_json::json!(["x", "y"]);
        let id = validate(&sign(serde_json::json!({"alg": "HS256"}), c), 500).expect("valid");
        assert_eq!(id.roles, vec!["x", "y"]);
    }
}
