//! The `aggregate` config: raw serde types as written in `gateway.toml`, validated into
//! [`Settings`] with every problem named by its config path. Plain Rust, unit-tested natively.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::pattern::PathPattern;
use crate::template::{Source, Template, is_path_char, is_token};

/// Most backends per aggregation: the host sends at most 32 requests per `fetch` call.
pub const MAX_BACKENDS: usize = 32;
/// Default overall deadline.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Largest overall deadline.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// The config as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Pattern for `{path.NAME}` values, e.g. `/users/{id}`.
    path: Option<String>,
    /// Overall deadline for every backend, in milliseconds.
    timeout_ms: Option<u64>,
    /// `keyed` (default) or `deep`.
    merge: Option<MergeMode>,
    /// Key of the object listing failed optional backends.
    errors_key: Option<String>,
    /// The upstream calls.
    #[serde(default)]
    backends: Vec<RawBackend>,
}

/// One backend as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    name: String,
    upstream: String,
    method: Option<String>,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    select: Option<Vec<String>>,
    required: Option<bool>,
    timeout_ms: Option<u64>,
}

/// How answers are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeMode {
    /// `{ "<backend name>": <its answer>, ... }`.
    Keyed,
    /// The answers (JSON objects) merged key by key, later backends winning.
    Deep,
}

/// A validated backend.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Name: the key in a keyed merge, and how failures are reported.
    pub name: String,
    /// The upstream (by name in the gateway config) to call.
    pub upstream: String,
    /// HTTP method.
    pub method: String,
    /// Path template (starts with a literal `/`).
    pub path: Template,
    /// Query parameters: name (as written) and value template.
    pub query: Vec<(String, Template)>,
    /// Headers: lower-case name and value template.
    pub headers: Vec<(String, Template)>,
    /// Fields to keep, each a list of keys; `None` keeps the whole answer.
    pub select: Option<Vec<Vec<String>>>,
    /// A failure fails the whole answer (502) rather than leaving a marker.
    pub required: bool,
    /// This backend's deadline: its own `timeout_ms`, else the overall one (never more).
    pub timeout_ms: u32,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pattern the request path must match (any path when absent).
    pub path: Option<PathPattern>,
    /// Merge strategy.
    pub merge: MergeMode,
    /// Key of the failures object in a partial answer.
    pub errors_key: String,
    /// Backends in config order (the order of a deep merge).
    pub backends: Vec<Backend>,
}

/// Headers a template may not set: the gateway owns framing and the target's host.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

/// Validate a parsed config, collecting every problem (with its config path) before failing.
pub fn validate(raw: RawConfig) -> Result<Settings, String> {
    let mut errors = Vec::new();
    let path = raw.path.as_deref().and_then(|p| {
        PathPattern::parse(p)
            .map_err(|e| errors.push(format!("path: {e}")))
            .ok()
    });
    let timeout_ms = match raw.timeout_ms {
        None => DEFAULT_TIMEOUT_MS,
        Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => ms,
        Some(ms) => {
            errors.push(format!(
                "timeout_ms: {ms} is not between 1 and {MAX_TIMEOUT_MS}"
            ));
            DEFAULT_TIMEOUT_MS
        }
    };
    let merge = raw.merge.unwrap_or(MergeMode::Keyed);
    let errors_key = raw.errors_key.unwrap_or_else(|| "_errors".to_owned());
    if errors_key.is_empty() {
        errors.push("errors_key: must not be empty".to_owned());
    }
    if raw.backends.is_empty() {
        errors.push("backends: at least one backend is needed".to_owned());
    }
    if raw.backends.len() > MAX_BACKENDS {
        errors.push(format!(
            "backends: {} backends, at most {MAX_BACKENDS}",
            raw.backends.len()
        ));
    }
    let mut backends: Vec<Backend> = Vec::new();
    for (i, b) in raw.backends.into_iter().enumerate() {
        let at = format!("backends[{i}]");
        if let Some(backend) = validate_backend(&at, b, path.as_ref(), timeout_ms, &mut errors) {
            if backends.iter().any(|o| o.name == backend.name) {
                errors.push(format!("{at}.name: `{}` is used twice", backend.name));
            }
            if backend.name == errors_key {
                errors.push(format!(
                    "{at}.name: `{}` is the errors_key; rename one of them",
                    backend.name
                ));
            }
            backends.push(backend);
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Settings {
        path,
        merge,
        errors_key,
        backends,
    })
}

fn validate_backend(
    at: &str,
    raw: RawBackend,
    pattern: Option<&PathPattern>,
    overall_ms: u64,
    errors: &mut Vec<String>,
) -> Option<Backend> {
    let before = errors.len();
    if raw.name.is_empty() {
        errors.push(format!("{at}.name: must not be empty"));
    }
    if raw.upstream.is_empty() {
        errors.push(format!("{at}.upstream: must not be empty"));
    }
    let method = raw.method.unwrap_or_else(|| "GET".to_owned());
    if !is_token(&method) || method.bytes().any(|b| b.is_ascii_lowercase()) {
        errors.push(format!(
            "{at}.method: {method:?} is not an upper-case HTTP method"
        ));
    }

    let path = parse_template(&format!("{at}.path"), &raw.path, errors);
    if let Some(t) = &path {
        if !t.literal_prefix().starts_with('/') {
            // The path is all a template may fill: the upstream (scheme, host, port) is fixed
            // by name, so the text must open with its own `/`.
            errors.push(format!(
                "{at}.path: {:?} must start with a literal `/`",
                raw.path
            ));
        }
        for literal in t.literals() {
            if let Err(why) = check_path_literal(literal) {
                errors.push(format!("{at}.path: {:?} {why}", raw.path));
            }
        }
    }
    let mut templates: Vec<(String, Template)> = Vec::new();
    let mut query = Vec::new();
    for (name, value) in raw.query {
        let field = format!("{at}.query.{name}");
        if name.is_empty() {
            errors.push(format!("{at}.query: a parameter name must not be empty"));
        }
        if let Some(t) = parse_template(&field, &value, errors) {
            templates.push((field, t.clone()));
            query.push((name, t));
        }
    }
    let mut headers = Vec::new();
    for (name, value) in raw.headers {
        let field = format!("{at}.headers.{name}");
        let lower = name.to_ascii_lowercase();
        if !is_token(&name) {
            errors.push(format!("{field}: {name:?} is not a header name"));
        } else if RESERVED_HEADERS.contains(&lower.as_str()) {
            errors.push(format!(
                "{field}: `{lower}` is set by the gateway and cannot be templated"
            ));
        }
        if let Some(t) = parse_template(&field, &value, errors) {
            if t.literals()
                .any(|l| l.chars().any(|c| c.is_control() && c != '\t'))
            {
                errors.push(format!("{field}: control characters in the value"));
            }
            templates.push((field, t.clone()));
            headers.push((lower, t));
        }
    }
    if let Some(t) = &path {
        templates.push((format!("{at}.path"), t.clone()));
    }
    for (field, t) in &templates {
        for source in t.sources() {
            if let Source::Path(name) = source
                && !pattern.is_some_and(|p| p.has_param(name))
            {
                errors.push(format!(
                    "{field}: `{{path.{name}}}` needs a `path` pattern with a `{{{name}}}` segment"
                ));
            }
        }
    }

    if raw.select.as_ref().is_some_and(Vec::is_empty) {
        errors.push(format!(
            "{at}.select: an empty list would keep nothing; leave `select` out to keep the whole answer"
        ));
    }
    let select = raw.select.map(|fields| {
        fields
            .iter()
            .filter_map(|f| {
                let keys: Vec<String> = f.split('.').map(str::to_owned).collect();
                if keys.iter().any(String::is_empty) {
                    errors.push(format!(
                        "{at}.select: {f:?} is not a field path (`name` or `a.b.c`)"
                    ));
                    return None;
                }
                Some(keys)
            })
            .collect::<Vec<_>>()
    });
    let timeout_ms = match raw.timeout_ms {
        None => overall_ms,
        Some(ms) if (1..=overall_ms).contains(&ms) => ms,
        Some(ms) => {
            errors.push(format!(
                "{at}.timeout_ms: {ms} is not between 1 and the overall timeout_ms ({overall_ms})"
            ));
            overall_ms
        }
    };

    if errors.len() != before {
        return None;
    }
    Some(Backend {
        name: raw.name,
        upstream: raw.upstream,
        method,
        path: path?,
        query,
        headers,
        select,
        required: raw.required.unwrap_or(true),
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
    })
}

fn parse_template(field: &str, text: &str, errors: &mut Vec<String>) -> Option<Template> {
    Template::parse(text)
        .map_err(|e| errors.push(format!("{field}: {e}")))
        .ok()
}

/// Literal path text: `pchar`s, `/` and well-formed `%XX` escapes; no `?` or `#` (query
/// parameters go in `query`).
fn check_path_literal(literal: &str) -> Result<(), &'static str> {
    let bytes = literal.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'?' => return Err("holds `?`: put query parameters in `query`"),
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return Err("holds a malformed `%` escape");
                }
                i += 3;
                continue;
            }
            b if is_path_char(b) => {}
            _ => return Err("holds a character that is not allowed in a path (encode it as %XX)"),
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<Settings, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&v.to_string())?;
        validate(raw)
    }

    #[test]
    fn a_full_config_is_accepted() {
        let s = parse(json!({
            "path": "/profile/{id}",
            "timeout_ms": 800,
            "merge": "deep",
            "errors_key": "missing",
            "backends": [
                {
                    "name": "user",
                    "upstream": "users",
                    "path": "/users/{path.id}",
                    "query": { "fields": "{query.fields|name}" },
                    "headers": { "X-Consumer": "{consumer}" },
                    "select": ["id", "address.city"],
                    "timeout_ms": 300,
                },
                { "name": "orders", "upstream": "orders", "method": "POST", "path": "/orders", "required": false },
            ],
        }))
        .expect("valid");
        assert_eq!(s.merge, MergeMode::Deep);
        assert_eq!(s.errors_key, "missing");
        let user = &s.backends[0];
        assert!(user.required);
        assert_eq!(user.timeout_ms, 300);
        assert_eq!(user.method, "GET");
        assert_eq!(user.headers[0].0, "x-consumer");
        assert_eq!(
            user.select,
            Some(vec![
                vec!["id".to_owned()],
                vec!["address".to_owned(), "city".to_owned()]
            ])
        );
        let orders = &s.backends[1];
        assert!(!orders.required);
        assert_eq!((orders.method.as_str(), orders.timeout_ms), ("POST", 800));
    }

    #[test]
    fn defaults() {
        let s = parse(json!({ "backends": [{ "name": "a", "upstream": "u", "path": "/" }] }))
            .expect("valid");
        assert_eq!(
            (s.backends[0].timeout_ms, s.merge),
            (1000, MergeMode::Keyed)
        );
        assert_eq!(s.errors_key, "_errors");
        assert!(s.path.is_none());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = parse(json!({ "backends": [], "timeout": 1 })).expect_err("must fail");
        assert!(err.contains("unknown field `timeout`"), "{err}");
        let err = parse(json!({ "backends": [{ "name": "a", "upstream": "u", "path": "/", "url": "http://x" }] }))
            .expect_err("must fail");
        assert!(err.contains("unknown field `url`"), "{err}");
        let err = parse(json!({ "merge": "shallow", "backends": [] })).expect_err("must fail");
        assert!(err.contains("unknown variant `shallow`"), "{err}");
    }

    #[test]
    fn every_problem_is_named() {
        let err = parse(json!({
            "path": "/p/{id}",
            "timeout_ms": 0,
            "backends": [
                { "name": "a", "upstream": "u", "path": "http://evil/{path.id}" },
                { "name": "a", "upstream": "u", "path": "{path.id}/x" },
                { "name": "b", "upstream": "", "path": "/x?y=1", "method": "get" },
                { "name": "c", "upstream": "u", "path": "/{path.nope}", "headers": { "Host": "evil", "bad name": "x" } },
                { "name": "d", "upstream": "u", "path": "/", "select": ["a..b"], "timeout_ms": 5000 },
                { "name": "_errors", "upstream": "u", "path": "/", "query": { "q": "{oops}" } },
            ],
        }))
        .expect_err("must fail");
        for needle in [
            "timeout_ms: 0 is not between 1 and 60000",
            r#"backends[0].path: "http://evil/{path.id}" must start with a literal `/`"#,
            r#"backends[1].path: "{path.id}/x" must start with a literal `/`"#,
            "backends[2].upstream: must not be empty",
            r#"backends[2].method: "get" is not an upper-case HTTP method"#,
            r#"backends[2].path: "/x?y=1" holds `?`"#,
            "backends[3].path: `{path.nope}` needs a `path` pattern with a `{nope}` segment",
            "backends[3].headers.Host: `host` is set by the gateway",
            r#"backends[3].headers.bad name: "bad name" is not a header name"#,
            r#"backends[4].select: "a..b" is not a field path"#,
            "backends[4].timeout_ms: 5000 is not between 1 and the overall timeout_ms (1000)",
            "backends[5].query.q: `{oops}` in template",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
        let err = parse(json!({
            "backends": [
                { "name": "a", "upstream": "u", "path": "/" },
                { "name": "a", "upstream": "u", "path": "/" },
                { "name": "_errors", "upstream": "u", "path": "/" },
            ],
        }))
        .expect_err("must fail");
        assert!(err.contains("backends[1].name: `a` is used twice"), "{err}");
        assert!(
            err.contains("backends[2].name: `_errors` is the errors_key"),
            "{err}"
        );
    }

    #[test]
    fn backends_are_needed_and_bounded() {
        let err = parse(json!({ "backends": [] })).expect_err("must fail");
        assert!(err.contains("at least one backend"), "{err}");
        let many: Vec<_> = (0..33)
            .map(|i| json!({ "name": format!("b{i}"), "upstream": "u", "path": "/" }))
            .collect();
        let err = parse(json!({ "backends": many })).expect_err("must fail");
        assert!(err.contains("33 backends, at most 32"), "{err}");
    }
}
