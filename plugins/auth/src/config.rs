//! The `auth` config: raw serde types as written in `gateway.toml`, validated into [`Settings`].
//! Every problem is collected with its config path before failing. Plain Rust, unit-tested
//! natively.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::apikey::{self, KeyHash};
use crate::host_key::HostKey;
use crate::keys::{Alg, KeyMaterial, hmac_key};

// ---------------------------------------------------------------- raw (as written)

/// The config as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Methods in the order they are tried; default: every configured one, in the order
    /// `mtls`, `api_key`, `jwt`, `basic`.
    methods: Option<Vec<String>>,
    /// Remove the credential before the request goes upstream.
    #[serde(default = "yes")]
    strip_credentials: bool,
    /// `realm` in `WWW-Authenticate` challenges.
    #[serde(default = "default_realm")]
    realm: String,
    /// Let requests without any credential through as this consumer.
    anonymous: Option<RawIdentity>,
    api_key: Option<RawApiKey>,
    jwt: Option<RawJwt>,
    basic: Option<RawBasic>,
    mtls: Option<RawMtls>,
}

fn yes() -> bool {
    true
}

fn default_realm() -> String {
    "tollgate".into()
}

/// Consumer metadata, shared by every method.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    consumer: String,
    #[serde(default)]
    roles: Vec<String>,
    plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    /// Header carrying the key (default `x-api-key`; `""` to disable).
    #[serde(default = "default_key_header")]
    header: String,
    /// Query parameter carrying the key (none by default).
    query: Option<String>,
    keys: Vec<RawKeyEntry>,
}

fn default_key_header() -> String {
    "x-api-key".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyEntry {
    /// SHA-256 of the key, hex (`sha256:` prefix optional); see `tollgate key hash`.
    hash: String,
    consumer: String,
    #[serde(default)]
    roles: Vec<String>,
    plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    /// Header carrying `Bearer <token>` (default `authorization`).
    #[serde(default = "default_auth_header")]
    header: String,
    issuers: Vec<RawIssuer>,
}

fn default_auth_header() -> String {
    "authorization".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    /// The exact `iss` value of this issuer's tokens.
    issuer: String,
    /// Accepted algorithms (the token's `alg` must be one of them).
    algorithms: Vec<String>,
    /// When non-empty, the token's `aud` must contain one of these.
    #[serde(default)]
    audiences: Vec<String>,
    /// Clock skew allowed for `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    leeway_s: u64,
    /// Refuse tokens without `exp`.
    #[serde(default = "yes")]
    require_exp: bool,
    #[serde(default = "default_consumer_claim")]
    consumer_claim: String,
    #[serde(default = "default_roles_claim")]
    roles_claim: String,
    #[serde(default = "default_plan_claim")]
    plan_claim: String,
    /// Inline keys: each `{ kid?, pem | jwk | secret | secret_base64 }`.
    #[serde(default)]
    keys: Vec<RawJwtKey>,
    /// An inline JWKS: a JSON object `{ "keys": [...] }` or its text.
    jwks: Option<Value>,
    /// A JWKS fetched through the gateway from an upstream named in this plugin's `fetch`.
    jwks_url: Option<RawJwksUrl>,
}

fn default_leeway() -> u64 {
    30
}
fn default_consumer_claim() -> String {
    "sub".into()
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_plan_claim() -> String {
    "plan".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwtKey {
    kid: Option<String>,
    pem: Option<String>,
    jwk: Option<Value>,
    secret: Option<String>,
    secret_base64: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwksUrl {
    /// An upstream listed in this plugin's `fetch` setting.
    upstream: String,
    /// Path (and query) of the key set on that upstream.
    path: String,
    /// Refetch the key set after this many seconds.
    #[serde(default = "default_refresh")]
    refresh_s: u64,
    /// At most one fetch per issuer in this many seconds, across every instance (and gateway).
    #[serde(default = "default_cooldown")]
    cooldown_s: u64,
    /// Deadline for one fetch.
    #[serde(default = "default_fetch_timeout")]
    timeout_ms: u32,
}

fn default_refresh() -> u64 {
    300
}
fn default_cooldown() -> u64 {
    30
}
fn default_fetch_timeout() -> u32 {
    2000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasic {
    users: Vec<RawUser>,
    /// How long a successful password check is remembered by an instance, in seconds (0: never).
    #[serde(default = "default_basic_cache")]
    cache_ttl_s: u64,
}

fn default_basic_cache() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    username: String,
    /// A bcrypt hash (`$2b$...`, as `htpasswd -nbB` makes).
    password_hash: String,
    /// Defaults to the username.
    consumer: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMtls {
    identities: Vec<RawCertIdentity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertIdentity {
    /// SHA-256 fingerprint of the client certificate (hex, colons optional).
    fingerprint: Option<String>,
    /// Exact subject DN as the host reports it in `tls.client.subject`.
    subject: Option<String>,
    /// One subject alternative name (matched against each in `tls.client.san`).
    san: Option<String>,
    consumer: String,
    #[serde(default)]
    roles: Vec<String>,
    plan: Option<String>,
}

// ---------------------------------------------------------------- validated

/// Who a credential stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub consumer: String,
    pub roles: Vec<String>,
    pub plan: Option<String>,
}

/// An authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ApiKey,
    Jwt,
    Basic,
    Mtls,
}

impl Method {
    /// The name used in config and in the `auth.method` context value.
    pub fn name(self) -> &'static str {
        match self {
            Method::ApiKey => "api_key",
            Method::Jwt => "jwt",
            Method::Basic => "basic",
            Method::Mtls => "mtls",
        }
    }
}

/// The validated config.
#[derive(Debug)]
pub struct Settings {
    pub methods: Vec<Method>,
    pub strip_credentials: bool,
    pub realm: String,
    pub anonymous: Option<Identity>,
    pub api_key: Option<ApiKeySettings>,
    pub jwt: Option<JwtSettings>,
    pub basic: Option<BasicSettings>,
    pub mtls: Option<MtlsSettings>,
}

#[derive(Debug)]
pub struct ApiKeySettings {
    /// Lower-case header name, if keys are read from a header.
    pub header: Option<String>,
    pub query: Option<String>,
    pub keys: Vec<(KeyHash, Identity)>,
}

#[derive(Debug)]
pub struct JwtSettings {
    pub header: String,
    pub issuers: Vec<Issuer>,
}

/// One trusted token issuer.
#[derive(Debug)]
pub struct Issuer {
    pub issuer: String,
    pub algorithms: Vec<Alg>,
    pub audiences: Vec<String>,
    pub leeway_s: u64,
    pub require_exp: bool,
    pub consumer_claim: String,
    pub roles_claim: String,
    pub plan_claim: String,
    /// Keys from `keys` and `jwks`.
    pub keys: Vec<JwtKey>,
    pub jwks_url: Option<JwksUrl>,
}

/// A verification key with its optional key id and algorithm.
#[derive(Debug, Clone)]
pub struct JwtKey {
    pub kid: Option<String>,
    pub alg: Option<Alg>,
    pub key: KeyMaterial,
    /// The gateway's copy of `key`, imported on first use.
    pub host: HostKey,
}

#[derive(Debug, Clone)]
pub struct JwksUrl {
    pub upstream: String,
    pub path: String,
    pub refresh_ms: u64,
    pub cooldown_ms: u64,
    pub timeout_ms: u32,
}

#[derive(Debug)]
pub struct BasicSettings {
    pub users: Vec<User>,
    pub cache_ttl_ms: u64,
}

#[derive(Debug)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    pub identity: Identity,
}

#[derive(Debug)]
pub struct MtlsSettings {
    pub identities: Vec<CertIdentity>,
}

#[derive(Debug)]
pub struct CertIdentity {
    /// Lower-case hex without separators.
    pub fingerprint: Option<String>,
    pub subject: Option<String>,
    pub san: Option<String>,
    pub identity: Identity,
}

// ---------------------------------------------------------------- validation

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
    let all = [Method::Mtls, Method::ApiKey, Method::Jwt, Method::Basic];
    let methods: Vec<Method> = match raw.methods {
        None => all.into_iter().filter(|m| configured(*m)).collect(),
        Some(names) => {
            let mut methods = Vec::new();
            for name in names {
                match all.iter().find(|m| m.name() == name) {
                    None => e.push(format!(
                        "methods: unknown method {name:?} (expected api_key, jwt, basic or mtls)"
                    )),
                    Some(m) if methods.contains(m) => {
                        e.push(format!("methods: {name:?} is listed twice"))
                    }
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
    };
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

fn identity(at: &str, raw: RawIdentity, e: &mut Vec<String>) -> Identity {
    check_identity(at, &raw.consumer, &raw.roles, raw.plan.as_deref(), e);
    Identity {
        consumer: raw.consumer,
        roles: raw.roles,
        plan: raw.plan,
    }
}

/// Consumer, roles and plan end up in context values (roles comma-joined), so they must be
/// non-empty, free of control characters, and roles free of commas.
fn check_identity(
    at: &str,
    consumer: &str,
    roles: &[String],
    plan: Option<&str>,
    e: &mut Vec<String>,
) {
    let bad = |s: &str| s.is_empty() || s.chars().any(char::is_control);
    if bad(consumer) {
        e.push(format!(
            "{at}.consumer: must be non-empty, without control characters"
        ));
    }
    for role in roles {
        if bad(role) || role.contains(',') || role.trim() != role {
            e.push(format!(
                "{at}.roles: invalid role {role:?} (empty, commas, spaces around or control characters)"
            ));
        }
    }
    if plan.is_some_and(bad) {
        e.push(format!(
            "{at}.plan: must be non-empty, without control characters"
        ));
    }
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn validate_api_key(raw: RawApiKey, e: &mut Vec<String>) -> ApiKeySettings {
    let header = if raw.header.is_empty() {
        None
    } else if is_token(&raw.header) {
        Some(raw.header.to_ascii_lowercase())
    } else {
        e.push(format!(
            "api_key.header: invalid header name {:?}",
            raw.header
        ));
        None
    };
    if let Some(q) = &raw.query
        && (q.is_empty() || q.contains(['&', '=', '#', ' ']))
    {
        e.push(format!("api_key.query: invalid parameter name {q:?}"));
    }
    if header.is_none() && raw.query.is_none() && raw.header.is_empty() {
        e.push("api_key: set `header` or `query` (or both)".into());
    }
    if raw.keys.is_empty() {
        e.push("api_key.keys: at least one key is needed".into());
    }
    let mut keys = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, k) in raw.keys.into_iter().enumerate() {
        let at = format!("api_key.keys[{i}]");
        check_identity(&at, &k.consumer, &k.roles, k.plan.as_deref(), e);
        match apikey::parse_hash(&k.hash) {
            Ok(hash) => {
                if !seen.insert(hash) {
                    e.push(format!("{at}.hash: the same key hash is listed twice"));
                }
                keys.push((
                    hash,
                    Identity {
                        consumer: k.consumer,
                        roles: k.roles,
                        plan: k.plan,
                    },
                ));
            }
            Err(msg) => e.push(format!("{at}.hash: {msg}")),
        }
    }
    ApiKeySettings {
        header,
        query: raw.query,
        keys,
    }
}

fn validate_jwt(raw: RawJwt, e: &mut Vec<String>) -> JwtSettings {
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

fn validate_issuer(at: &str, raw: RawIssuer, e: &mut Vec<String>) -> Issuer {
    if raw.issuer.is_empty() {
        e.push(format!("{at}.issuer: must not be empty"));
    }
    let mut algorithms = Vec::new();
    for name in &raw.algorithms {
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
    if raw.algorithms.is_empty() {
        e.push(format!("{at}.algorithms: list the accepted algorithms"));
    }
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

    let mut keys = Vec::new();
    for (i, k) in raw.keys.into_iter().enumerate() {
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
    if let Some(jwks) = &raw.jwks {
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

    let jwks_url = raw.jwks_url.map(|u| {
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
    });
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

fn decode_any_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let text = text.trim();
    STANDARD
        .decode(text)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
}

fn validate_basic(raw: RawBasic, e: &mut Vec<String>) -> BasicSettings {
    if raw.users.is_empty() {
        e.push("basic.users: at least one user is needed".into());
    }
    let mut names = BTreeSet::new();
    let users = raw
        .users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = format!("basic.users[{i}]");
            if u.username.is_empty()
                || u.username.contains(':')
                || u.username.chars().any(char::is_control)
            {
                e.push(format!(
                    "{at}.username: must be non-empty, without `:` or control characters"
                ));
            }
            if !names.insert(u.username.clone()) {
                e.push(format!("{at}.username: {:?} is listed twice", u.username));
            }
            if let Err(msg) = crate::basic::check_hash(&u.password_hash) {
                e.push(format!("{at}.password_hash: {msg}"));
            }
            let consumer = u.consumer.unwrap_or_else(|| u.username.clone());
            check_identity(&at, &consumer, &u.roles, u.plan.as_deref(), e);
            User {
                username: u.username,
                password_hash: u.password_hash,
                identity: Identity {
                    consumer,
                    roles: u.roles,
                    plan: u.plan,
                },
            }
        })
        .collect();
    BasicSettings {
        users,
        cache_ttl_ms: raw.cache_ttl_s.saturating_mul(1000),
    }
}

/// A SHA-256 fingerprint in lower-case hex without separators, if `text` is one.
pub fn normalise_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

fn validate_mtls(raw: RawMtls, e: &mut Vec<String>) -> MtlsSettings {
    if raw.identities.is_empty() {
        e.push("mtls.identities: at least one identity is needed".into());
    }
    let identities = raw
        .identities
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("mtls.identities[{i}]");
            let given = [
                c.fingerprint.is_some(),
                c.subject.is_some(),
                c.san.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if given != 1 {
                e.push(format!(
                    "{at}: give exactly one of `fingerprint`, `subject`, `san`"
                ));
            }
            let fingerprint = c.fingerprint.as_deref().and_then(|f| {
                let n = normalise_fingerprint(f);
                if n.is_none() {
                    e.push(format!(
                        "{at}.fingerprint: expected 64 hex digits (SHA-256), colons allowed"
                    ));
                }
                n
            });
            check_identity(&at, &c.consumer, &c.roles, c.plan.as_deref(), e);
            CertIdentity {
                fingerprint,
                subject: c.subject,
                san: c.san,
                identity: Identity {
                    consumer: c.consumer,
                    roles: c.roles,
                    plan: c.plan,
                },
            }
        })
        .collect();
    MtlsSettings { identities }
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
