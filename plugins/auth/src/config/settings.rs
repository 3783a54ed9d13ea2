//! The validated `auth` config: every method's settings, the identities credentials stand for,
//! and the issuers and keys tokens are verified with.

use crate::apikey::KeyHash;
use crate::host_key::HostKey;
use crate::keys::{Alg, KeyMaterial};

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
    /// Keys managed by a control plane are looked up in the state.
    pub control: bool,
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
