//! `GET /admin/config`: the active config as JSON with every secret masked.

use serde_json::json;

use crate::config::{Config, OnError, PathMatch, StateSettings};

/// The active config as JSON with every secret replaced by `"***"`: plugin config values under
/// keys that look secret (see [`looks_secret`]), PEM blocks anywhere, the admin token and the
/// password in the state URL.
pub fn config_json(config: &Config) -> serde_json::Value {
    let on_error = |o: OnError| match o {
        OnError::FailClosed => "fail-closed",
        OnError::FailOpen => "fail-open",
    };
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let plugins: serde_json::Map<_, _> = config
        .plugins
        .iter()
        .map(|(name, p)| {
            let mut plugin_config =
                serde_json::from_str(&p.config_json).unwrap_or(serde_json::Value::Null);
            mask_secrets(&mut plugin_config, false);
            let entry = json!({
                "module": p.module.display().to_string(),
                "on_error": on_error(p.on_error),
                "on_state_error": on_error(p.on_state_error),
                "timeout_ms": millis(p.timeout),
                "memory_limit_mb": p.memory_limit / (1024 * 1024),
                "pool_size": p.pool_size,
                "fetch": p.fetch,
                "config": plugin_config,
            });
            (name.clone(), entry)
        })
        .collect();
    let upstreams: serde_json::Map<_, _> = config
        .upstreams
        .iter()
        .map(|(name, u)| {
            let entry = json!({
                "targets": u.targets,
                "connect_timeout_ms": millis(u.connect_timeout),
                "request_timeout_ms": millis(u.request_timeout),
            });
            (name.clone(), entry)
        })
        .collect();
    let routes: Vec<_> = config
        .routes
        .iter()
        .map(|r| {
            let (kind, path) = match &r.path {
                PathMatch::Exact(p) => ("path", p),
                PathMatch::Prefix(p) => ("path_prefix", p),
            };
            let mut route = json!({
                "name": &*r.name,
                "hosts": r.hosts,
                "methods": r.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                "upstream": r.upstream,
                "chain": r.chain,
                "case_insensitive": r.case_insensitive,
            });
            if let Some(d) = &r.deprecation {
                let text = |v: &Option<http::HeaderValue>| {
                    v.as_ref().and_then(|v| v.to_str().ok().map(str::to_owned))
                };
                route["deprecation"] = json!({
                    "deprecation": text(&d.deprecation),
                    "sunset": text(&d.sunset),
                    "link": text(&d.link),
                });
            }
            route[kind] = json!(path);
            route
        })
        .collect();
    let state = match &config.state {
        StateSettings::Memory => json!({"backend": "memory"}),
        StateSettings::Redis {
            url,
            timeout,
            key_prefix,
            write_behind,
        } => json!({
            "backend": "redis",
            "url": mask_url_password(url),
            "timeout_ms": millis(*timeout),
            "key_prefix": key_prefix,
            "write_behind_ms": millis(*write_behind),
        }),
        StateSettings::RedisCluster {
            nodes,
            timeout,
            key_prefix,
            write_behind,
        } => json!({
            "backend": "redis-cluster",
            "nodes": nodes.iter().map(|n| mask_url_password(n)).collect::<Vec<_>>(),
            "timeout_ms": millis(*timeout),
            "key_prefix": key_prefix,
            "write_behind_ms": millis(*write_behind),
        }),
    };
    let access_log = &config.access_log;
    let (destination, path) = match &access_log.destination {
        crate::config::AccessLogDestination::Stdout => ("stdout", None),
        crate::config::AccessLogDestination::Stderr => ("stderr", None),
        crate::config::AccessLogDestination::File(p) => ("file", Some(p.display().to_string())),
    };
    json!({
        "source": config.source.display().to_string(),
        "gateway": {
            "plugin_dir": config.gateway.plugin_dir.display().to_string(),
            "cache_dir": config.gateway.cache_dir.display().to_string(),
            "watch": config.gateway.watch,
            "trusted_proxies": config.gateway.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "reject_underscore_headers": config.gateway.reject_underscore_headers,
        },
        "listeners": config.listeners.iter().map(|l| json!({"name": l.name, "addr": l.addr.to_string()})).collect::<Vec<_>>(),
        "admin": config.admin.as_ref().map(|a| json!({
            "addr": a.addr.to_string(),
            "token": a.token.as_ref().map(|_| "***"),
        })),
        "limits": {
            "max_header_count": config.limits.max_header_count,
            "max_header_bytes": config.limits.max_header_bytes,
            "max_body_bytes": config.limits.max_body_bytes,
            "max_response_body_bytes": config.limits.max_response_body_bytes,
            "max_buffered_bytes": config.limits.max_buffered_bytes,
        },
        "state": state,
        "access_log": {
            "enabled": access_log.enabled,
            "destination": destination,
            "path": path,
        },
        "upstreams": upstreams,
        "plugins": plugins,
        "routes": routes,
    })
}

/// Words that make a config key secret when one of its `_`/`-`/`.`-separated parts is one of
/// them, or when the key contains `secret`, `password`, `token` or `private`.
const SECRET_WORDS: &[&str] = &[
    "key",
    "keys",
    "secret",
    "secrets",
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "hash",
    "hashes",
    "pem",
    "jwk",
    "jwks",
    "credential",
    "credentials",
    "apikey",
    "private",
];

/// Fields shown even inside a secret value: they name who a credential belongs to or where it
/// is carried, not the credential (`keys = [{ hash = "…", consumer = "alice" }]` shows `alice`;
/// `api_key.header` is shown).
const PUBLIC_FIELDS: &[&str] = &[
    "consumer", "roles", "plan", "kid", "username", "issuer", "alg", "kty", "use", "header",
    "query",
];

/// Header names whose values are credentials wherever a plugin config names them: as a key
/// (`set = { authorization = "Bearer …" }`) or as the `name` beside a `value`.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Does a config key name look like it holds a secret?
pub fn looks_secret(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if SECRET_HEADERS.contains(&lower.as_str()) {
        return true;
    }
    ["secret", "password", "token", "private"]
        .iter()
        .any(|w| lower.contains(w))
        || lower
            .split(['_', '-', '.'])
            .any(|part| SECRET_WORDS.contains(&part))
}

/// Replace secrets in a plugin's config: every scalar under a secret-looking key (at any depth,
/// except [`PUBLIC_FIELDS`]) or beside a `name`/`header` naming a credential header, every
/// string holding a PEM block, and passwords and secret query parameters in URLs.
pub fn mask_secrets(value: &mut serde_json::Value, secret: bool) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            // `{ name = "authorization", value = "Bearer …" }`: the value is the credential.
            let names_secret_header = ["name", "header"].iter().any(|field| {
                map.get(*field)
                    .and_then(Value::as_str)
                    .is_some_and(|n| SECRET_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
            });
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                let inner = if secret {
                    !PUBLIC_FIELDS.contains(&lower.as_str())
                } else {
                    looks_secret(k)
                        || (names_secret_header && matches!(lower.as_str(), "value" | "values"))
                };
                mask_secrets(v, inner);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_secrets(v, secret)),
        Value::String(s) if secret || s.contains("-----BEGIN") => *value = json!("***"),
        Value::String(s) if s.contains("://") => *s = mask_url_password(s),
        Value::Null => {}
        _ if secret => *value = json!("***"),
        _ => {}
    }
}

/// Query parameters whose values are masked in URLs shown by the admin API, besides every
/// name [`looks_secret`] matches.
const SECRET_PARAMS: &[&str] = &["pass", "pwd", "auth", "sig", "signature", "code", "session"];

/// Mask the credentials in a URL: the password in its userinfo (`redis://user:PASSWORD@host`
/// → `redis://user:***@host`; a userinfo without `:` is often a token and is masked whole) and
/// the values of secret-looking query parameters (`?password=…`, `?access_token=…`). Text that
/// is not a URL, and a URL without credentials, is returned unchanged.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{}", mask_query_values(tail))
}

/// `path?a=1&token=x#f` → `path?a=1&token=***#f` (see [`SECRET_PARAMS`]).
fn mask_query_values(tail: &str) -> String {
    let Some((path, rest)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if looks_secret(name)
                    || SECRET_PARAMS.contains(&name.to_ascii_lowercase().as_str()) =>
            {
                format!("{name}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{path}?{}", masked.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_names_kept() {
        let mut config = json!({
            "api_key": {"header": "x-api-key", "keys": [{"hash": "abc", "consumer": "alice", "roles": ["admin"]}]},
            "jwt": {"issuers": [{"issuer": "i", "keys": [{"kid": "k1", "secret": "s3"}, {"pem": "-----BEGIN PUBLIC KEY-----"}]}]},
            "basic": {"users": [{"username": "bob", "password_hash": "$2b$"}]},
            "client_secret": 42,
            "note": "-----BEGIN PRIVATE KEY-----\nMII",
            "limit": 10,
            "tokens": {"alice": "raw-key"},
        });
        mask_secrets(&mut config, false);
        assert_eq!(config["api_key"]["header"], "x-api-key");
        assert_eq!(config["api_key"]["keys"][0]["hash"], "***");
        assert_eq!(config["api_key"]["keys"][0]["consumer"], "alice");
        assert_eq!(config["api_key"]["keys"][0]["roles"][0], "admin");
        assert_eq!(config["jwt"]["issuers"][0]["issuer"], "i");
        assert_eq!(config["jwt"]["issuers"][0]["keys"][0]["kid"], "k1");
        assert_eq!(config["jwt"]["issuers"][0]["keys"][0]["secret"], "***");
        assert_eq!(config["jwt"]["issuers"][0]["keys"][1]["pem"], "***");
        assert_eq!(config["basic"]["users"][0]["username"], "bob");
        assert_eq!(config["basic"]["users"][0]["password_hash"], "***");
        assert_eq!(config["client_secret"], "***");
        assert_eq!(config["note"], "***");
        assert_eq!(config["limit"], 10);
        assert_eq!(config["tokens"]["alice"], "***");
    }

    #[test]
    fn credential_headers_and_urls_in_plugin_configs_are_masked() {
        let mut config = json!({
            "request": {"set": {"Authorization": "Bearer s3", "cookie": "sid=s3", "x-kept": "v"}},
            "backends": [{"headers": [
                {"name": "proxy-authorization", "value": "Basic s3"},
                {"name": "accept", "value": "application/json"},
            ]}],
            "callback_url": "https://user:pw@idp.example/keys?token=s3&kid=k1",
            "remove": ["authorization"],
        });
        mask_secrets(&mut config, false);
        assert_eq!(config["request"]["set"]["Authorization"], "***");
        assert_eq!(config["request"]["set"]["cookie"], "***");
        assert_eq!(config["request"]["set"]["x-kept"], "v");
        let headers = &config["backends"][0]["headers"];
        assert_eq!(headers[0]["value"], "***");
        assert_eq!(headers[0]["name"], "proxy-authorization");
        assert_eq!(headers[1]["value"], "application/json");
        assert_eq!(
            config["callback_url"],
            "https://user:***@idp.example/keys?token=***&kid=k1"
        );
        assert_eq!(config["remove"][0], "authorization");
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url_password("redis://user:hunter2@db:6379/0"),
            "redis://user:***@db:6379/0"
        );
        assert_eq!(mask_url_password("redis://:p%40ss@db"), "redis://:***@db");
        assert_eq!(mask_url_password("redis://db:6379"), "redis://db:6379");
        assert_eq!(mask_url_password("not a url"), "not a url");
        assert_eq!(
            mask_url_password("redis://db:6379/0?password=hunter2&db=1"),
            "redis://db:6379/0?password=***&db=1"
        );
        assert_eq!(
            mask_url_password("https://ghp_secret@idp.example/jwks?access_token=abc&x=1#top"),
            "https://***@idp.example/jwks?access_token=***&x=1#top"
        );
        assert_eq!(
            mask_url_password("https://idp.example/jwks?kid=1"),
            "https://idp.example/jwks?kid=1"
        );
    }
}
