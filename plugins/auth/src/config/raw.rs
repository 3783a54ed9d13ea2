//! The `auth` config as written in `gateway.toml`: serde types that reject unknown fields, with
//! their defaults. Nothing here is checked beyond its shape.

use serde::Deserialize;
use serde_json::Value;

/// The config as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Methods in the order they are tried; default: every configured one, in the order
    /// `mtls`, `api_key`, `jwt`, `basic`.
    pub(super) methods: Option<Vec<String>>,
    /// Remove the credential before the request goes upstream.
    #[serde(default = "yes")]
    pub(super) strip_credentials: bool,
    /// `realm` in `WWW-Authenticate` challenges.
    #[serde(default = "default_realm")]
    pub(super) realm: String,
    /// Let requests without any credential through as this consumer.
    pub(super) anonymous: Option<RawIdentity>,
    pub(super) api_key: Option<RawApiKey>,
    pub(super) jwt: Option<RawJwt>,
    pub(super) basic: Option<RawBasic>,
    pub(super) mtls: Option<RawMtls>,
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
pub(super) struct RawIdentity {
    pub(super) consumer: String,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    pub(super) plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiKey {
    /// Header carrying the key (default `x-api-key`; `""` to disable).
    #[serde(default = "default_key_header")]
    pub(super) header: String,
    /// Query parameter carrying the key (none by default).
    pub(super) query: Option<String>,
    /// Keys in the config (may be empty when `control` is on).
    #[serde(default)]
    pub(super) keys: Vec<RawKeyEntry>,
    /// Also accept the keys a Tollgate control plane manages, which the gateway writes into
    /// this plugin's state (`control-key:<sha256>`); see docs/control-plane.md.
    #[serde(default)]
    pub(super) control: bool,
}

fn default_key_header() -> String {
    "x-api-key".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyEntry {
    /// SHA-256 of the key, hex (`sha256:` prefix optional); see `tollgate key hash`.
    pub(super) hash: String,
    pub(super) consumer: String,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    pub(super) plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwt {
    /// Header carrying `Bearer <token>` (default `authorization`).
    #[serde(default = "default_auth_header")]
    pub(super) header: String,
    pub(super) issuers: Vec<RawIssuer>,
}

fn default_auth_header() -> String {
    "authorization".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuer {
    /// The exact `iss` value of this issuer's tokens.
    pub(super) issuer: String,
    /// Accepted algorithms (the token's `alg` must be one of them).
    pub(super) algorithms: Vec<String>,
    /// When non-empty, the token's `aud` must contain one of these.
    #[serde(default)]
    pub(super) audiences: Vec<String>,
    /// Clock skew allowed for `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub(super) leeway_s: u64,
    /// Refuse tokens without `exp`.
    #[serde(default = "yes")]
    pub(super) require_exp: bool,
    #[serde(default = "default_consumer_claim")]
    pub(super) consumer_claim: String,
    #[serde(default = "default_roles_claim")]
    pub(super) roles_claim: String,
    #[serde(default = "default_plan_claim")]
    pub(super) plan_claim: String,
    /// Inline keys: each `{ kid?, pem | jwk | secret | secret_base64 }`.
    #[serde(default)]
    pub(super) keys: Vec<RawJwtKey>,
    /// An inline JWKS: a JSON object `{ "keys": [...] }` or its text.
    pub(super) jwks: Option<Value>,
    /// A JWKS fetched through the gateway from an upstream named in this plugin's `fetch`.
    pub(super) jwks_url: Option<RawJwksUrl>,
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
pub(super) struct RawJwtKey {
    pub(super) kid: Option<String>,
    pub(super) pem: Option<String>,
    pub(super) jwk: Option<Value>,
    pub(super) secret: Option<String>,
    pub(super) secret_base64: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwksUrl {
    /// An upstream listed in this plugin's `fetch` setting.
    pub(super) upstream: String,
    /// Path (and query) of the key set on that upstream.
    pub(super) path: String,
    /// Refetch the key set after this many seconds.
    #[serde(default = "default_refresh")]
    pub(super) refresh_s: u64,
    /// At most one fetch per issuer in this many seconds, across every instance (and gateway).
    #[serde(default = "default_cooldown")]
    pub(super) cooldown_s: u64,
    /// Deadline for one fetch.
    #[serde(default = "default_fetch_timeout")]
    pub(super) timeout_ms: u32,
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
pub(super) struct RawBasic {
    pub(super) users: Vec<RawUser>,
    /// How long a successful password check is remembered by an instance, in seconds (0: never).
    #[serde(default = "default_basic_cache")]
    pub(super) cache_ttl_s: u64,
}

fn default_basic_cache() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub(super) username: String,
    /// A bcrypt hash (`$2b$...`, as `htpasswd -nbB` makes).
    pub(super) password_hash: String,
    /// Defaults to the username.
    pub(super) consumer: Option<String>,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    pub(super) plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMtls {
    pub(super) identities: Vec<RawCertIdentity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertIdentity {
    /// SHA-256 fingerprint of the client certificate (hex, colons optional).
    pub(super) fingerprint: Option<String>,
    /// Exact subject DN as the host reports it in `tls.client.subject`.
    pub(super) subject: Option<String>,
    /// One subject alternative name (matched against each in `tls.client.san`).
    pub(super) san: Option<String>,
    pub(super) consumer: String,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    pub(super) plan: Option<String>,
}
