//! Tollgate built-in plugin `auth`: who is calling. API keys, JWT, HTTP Basic and mTLS identity,
//! tried in the configured order; the first method whose credential is present decides.
//!
//! ```toml
//! [plugins.auth]
//! module = "auth"
//! timeout_ms = 50
//! [plugins.auth.config]
//! methods = ["jwt", "api_key"]
//! api_key = { header = "x-api-key", keys = [{ hash = "<tollgate key hash KEY>", consumer = "ci" }] }
//! jwt = { issuers = [{ issuer = "https://idp.example", algorithms = ["RS256"], keys = [{ pem = "..." }] }] }
//! ```
//!
//! On success it sets the context values `consumer`, `roles` (comma-separated), `plan` and
//! `auth.method`, and removes the credential before the upstream. On failure it answers 401 with a
//! `WWW-Authenticate` challenge and a JSON body that never echoes the credential. See the README.

mod apikey;
mod basic;
mod config;
mod host_key;
mod jwks;
mod jwt;
mod keys;
mod query;

use basic::BasicAuth;
use config::{Identity, Method, RawConfig, Settings};
use jwks::JwksCache;
use tollgate_sdk::{Action, Capabilities, Plugin, Request, clock, context, log};

/// What one method found on a request.
enum Outcome {
    /// No credential of this kind: try the next method.
    Absent,
    /// A valid credential for this identity.
    Valid(Identity),
    /// A credential of this kind that is not valid: 401, no fall-through.
    Invalid(&'static str),
}

struct Auth {
    settings: Settings,
    basic: Option<BasicAuth>,
    jwks: JwksCache,
}

impl Plugin for Auth {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        let mut settings = config::validate(config)?;
        let basic = settings.basic.take().map(BasicAuth::new);
        let issuers = settings.jwt.as_ref().map_or(0, |j| j.issuers.len());
        Ok(Auth {
            settings,
            basic,
            jwks: JwksCache::new(issuers),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request()
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        let now_ms = clock::now_millis();
        for &method in &self.settings.methods {
            let outcome = match method {
                Method::ApiKey => self.api_key(req),
                Method::Jwt => self.jwt(req, now_ms),
                Method::Basic => self.basic(req, now_ms),
                Method::Mtls => self.mtls(),
            };
            match outcome {
                Outcome::Absent => continue,
                Outcome::Valid(identity) => {
                    self.admit(req, &identity, method.name());
                    return Action::Continue;
                }
                Outcome::Invalid(message) => {
                    log::debug(&format!("auth: {} refused: {message}", method.name()));
                    return self.unauthorized(message, Some(method));
                }
            }
        }
        // No method found its credential. An `Authorization` header that no configured method
        // understood is still a credential: refuse it rather than treat the caller as anonymous.
        if self.authorization_is_ours() && req.header("authorization").is_some() {
            return self.unauthorized("unsupported authorization scheme", None);
        }
        match &self.settings.anonymous {
            Some(identity) => {
                self.admit(req, identity, "anonymous");
                Action::Continue
            }
            None => self.unauthorized("missing credentials", None),
        }
    }
}

/// The value after `scheme ` in an `Authorization`-style header, if the scheme matches
/// (case-insensitive, RFC 9110 §11.1).
fn after_scheme<'v>(value: &'v str, scheme: &str) -> Option<&'v str> {
    let (s, rest) = value.trim_start().split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

impl Auth {
    fn authorization_is_ours(&self) -> bool {
        self.basic.is_some()
            || self
                .settings
                .jwt
                .as_ref()
                .is_some_and(|j| j.header == "authorization")
    }

    fn api_key(&self, req: &Request<'_>) -> Outcome {
        let Some(cfg) = &self.settings.api_key else {
            return Outcome::Absent;
        };
        let mut presented = Vec::new();
        if let Some(header) = &cfg.header {
            presented.extend(req.header_all(header));
        }
        if let Some(param) = &cfg.query
            && let Some(q) = req.query()
        {
            presented.extend(query::values(&q, param));
        }
        let key = match presented.as_slice() {
            [] => return Outcome::Absent,
            [key] => key,
            _ => return Outcome::Invalid("more than one API key"),
        };
        let hash = apikey::hash_key(key);
        let hashes: Vec<apikey::KeyHash> = cfg.keys.iter().map(|(h, _)| *h).collect();
        match apikey::find_constant_time(&hash, &hashes).and_then(|i| cfg.keys.get(i)) {
            Some((_, identity)) => Outcome::Valid(identity.clone()),
            None if cfg.control => match apikey::control_lookup(&hash, clock::now_millis()) {
                Ok(Some(identity)) => Outcome::Valid(identity),
                Ok(None) => Outcome::Invalid("invalid API key"),
                // The host's `on_state_error` policy (fail-closed by default) turns this into 503.
                Err(_) => Outcome::Invalid("API key store unavailable"),
            },
            None => Outcome::Invalid("invalid API key"),
        }
    }

    fn jwt(&self, req: &Request<'_>, now_ms: u64) -> Outcome {
        let Some(cfg) = &self.settings.jwt else {
            return Outcome::Absent;
        };
        let values = req.header_all(&cfg.header);
        let value = match values.as_slice() {
            [] => return Outcome::Absent,
            [value] => value,
            _ => return Outcome::Invalid("more than one token"),
        };
        let token = match after_scheme(value, "bearer") {
            Some(token) => token,
            // `Authorization: Basic ...` belongs to the basic method.
            None if cfg.header == "authorization" => return Outcome::Absent,
            // A dedicated header may carry the bare token.
            None => value.trim(),
        };
        match self.check_token(token, now_ms) {
            Ok(identity) => Outcome::Valid(identity),
            Err(e) => Outcome::Invalid(e.message()),
        }
    }

    fn check_token(&self, token: &str, now_ms: u64) -> Result<Identity, jwt::JwtError> {
        let issuers = self
            .settings
            .jwt
            .as_ref()
            .map(|j| j.issuers.as_slice())
            .unwrap_or_default();
        let token = jwt::parse(token)?;
        let (index, issuer) = jwt::issuer_for(&token, issuers)?;
        let mut result = jwt::verify_with(&token, &issuer.keys);
        if result.is_err()
            && let Some(url) = &issuer.jwks_url
        {
            let fetched = self
                .jwks
                .keys(index, issuer, url, token.kid.as_deref(), now_ms);
            if !fetched.is_empty() || result == Err(jwt::JwtError::NoKey) {
                let second = jwt::verify_with(&token, fetched.iter());
                // A bad signature against a fitting configured key outranks "no key".
                result = match (result, second) {
                    (_, Ok(())) => Ok(()),
                    (Err(jwt::JwtError::BadSignature), _) => Err(jwt::JwtError::BadSignature),
                    (_, second) => second,
                };
            }
        }
        result?;
        jwt::check_claims(issuer, &token.claims, now_ms / 1000)
    }

    fn basic(&self, req: &Request<'_>, now_ms: u64) -> Outcome {
        let Some(basic) = &self.basic else {
            return Outcome::Absent;
        };
        let values = req.header_all("authorization");
        let value = match values.as_slice() {
            [] => return Outcome::Absent,
            [value] => value,
            _ => return Outcome::Invalid("more than one Authorization header"),
        };
        let Some(encoded) = after_scheme(value, "basic") else {
            return Outcome::Absent;
        };
        let Some((user, password)) = basic::decode_credentials(encoded) else {
            return Outcome::Invalid("malformed basic credentials");
        };
        match basic.check(&user, &password, now_ms) {
            Some(user) => Outcome::Valid(user.identity.clone()),
            None => Outcome::Invalid("invalid username or password"),
        }
    }

    fn mtls(&self) -> Outcome {
        let Some(cfg) = &self.settings.mtls else {
            return Outcome::Absent;
        };
        let present = |k: &str| context::get(k).filter(|v| !v.trim().is_empty());
        let fingerprint =
            present("tls.client.fingerprint").and_then(|f| config::normalise_fingerprint(&f));
        let subject = present("tls.client.subject");
        let sans = present("tls.client.san");
        if fingerprint.is_none() && subject.is_none() && sans.is_none() {
            return Outcome::Absent;
        }
        let sans: Vec<&str> = sans
            .as_deref()
            .map(|s| s.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let found = cfg.identities.iter().find(|c| {
            c.fingerprint.is_some() && c.fingerprint == fingerprint
                || c.subject.is_some() && c.subject == subject
                || c.san.as_deref().is_some_and(|s| sans.contains(&s))
        });
        match found {
            Some(c) => Outcome::Valid(c.identity.clone()),
            None => Outcome::Invalid("client certificate not recognised"),
        }
    }

    /// Publish the identity to later plugins and remove the credentials before the upstream.
    fn admit(&self, req: &Request<'_>, identity: &Identity, method: &str) {
        context::set("consumer", &identity.consumer);
        context::set("roles", &identity.roles.join(","));
        match &identity.plan {
            Some(plan) => context::set("plan", plan),
            None => context::remove("plan"),
        }
        context::set("auth.method", method);
        if !self.settings.strip_credentials {
            return;
        }
        if let Some(cfg) = &self.settings.api_key {
            if let Some(header) = &cfg.header {
                req.remove_header(header);
            }
            if let Some(param) = &cfg.query
                && let Some(q) = req.query()
            {
                let rest = query::without(&q, param);
                if rest != q {
                    req.set_query((!rest.is_empty()).then_some(rest.as_str()));
                }
            }
        }
        if let Some(jwt) = &self.settings.jwt {
            req.remove_header(&jwt.header);
        }
        if self.basic.is_some() {
            req.remove_header("authorization");
        }
    }

    /// 401 with a challenge for each configured method that has one.
    fn unauthorized(&self, message: &str, failed: Option<Method>) -> Action {
        let realm = &self.settings.realm;
        let mut action = Action::json(
            401,
            &serde_json::json!({ "error": "unauthorized", "message": message }),
        )
        .header("cache-control", "no-store");
        for &method in &self.settings.methods {
            let challenge = match method {
                Method::Jwt if failed == Some(Method::Jwt) => {
                    format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
                }
                Method::Jwt => format!("Bearer realm=\"{realm}\""),
                Method::Basic => format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
                Method::ApiKey => format!("ApiKey realm=\"{realm}\""),
                Method::Mtls => continue,
            };
            action = action.header("www-authenticate", challenge);
        }
        action
    }
}

tollgate_sdk::export_plugin!(Auth);
