//! The `transform` config: raw serde types as written in `gateway.toml`, validated into
//! [`Rules`]. Plain Rust with no host calls, so it is unit-tested natively.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::json::{JsonOp, Pointer};
use crate::path::PathRewrite;

/// Default cap on a body the plugin parses (JSON, form or XML): 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// The config as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    request: RawRequest,
    #[serde(default)]
    response: RawResponse,
    /// Largest body the plugin parses; bigger ones are refused (413 / 502).
    max_body_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default)]
    headers: RawPairs,
    path: Option<RawPath>,
    #[serde(default)]
    query: RawPairs,
    #[serde(default)]
    body: RawBody,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    /// Upstream status (as a string key, TOML keys are strings) to the status sent on.
    #[serde(default)]
    status: BTreeMap<String, u16>,
    #[serde(default)]
    headers: RawPairs,
    #[serde(default)]
    body: RawBody,
}

/// Operations on a multimap (headers, query parameters).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPairs {
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    rename: BTreeMap<String, String>,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    add: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Exactly one of `strip_prefix`, `prefix` + `replace`, `regex` + `replace`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    strip_prefix: Option<String>,
    prefix: Option<String>,
    regex: Option<String>,
    replace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    convert: Option<String>,
    #[serde(default)]
    json: Vec<RawJsonOp>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum RawJsonOp {
    Set {
        path: String,
        value: serde_json::Value,
    },
    Remove {
        path: String,
    },
    Rename {
        path: String,
        to: String,
    },
    Move {
        path: String,
        to: String,
    },
    Wrap {
        key: String,
    },
    Unwrap {
        key: String,
    },
}

/// Operations on headers or query parameters, applied in the order remove, rename, set, add.
/// Names of headers are lower case.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PairOps {
    /// Names whose every value is removed.
    pub remove: Vec<String>,
    /// `(from, to)`: the values of `from` replace those of `to`, and `from` goes.
    pub rename: Vec<(String, String)>,
    /// `(name, value)`: replaces every value of `name`.
    pub set: Vec<(String, String)>,
    /// `(name, value)`: one more value.
    pub add: Vec<(String, String)>,
}

impl PairOps {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.set.is_empty()
            && self.add.is_empty()
    }
}

/// A format translation of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convert {
    /// `application/x-www-form-urlencoded` request body to a JSON object.
    FormToJson,
    /// JSON object request body to `application/x-www-form-urlencoded`.
    JsonToForm,
    /// XML response body to JSON.
    XmlToJson,
}

/// What happens to a body.
#[derive(Debug, Default, Clone)]
pub struct BodyRules {
    /// Translation applied first.
    pub convert: Option<Convert>,
    /// JSON operations, in order, after the translation.
    pub json: Vec<JsonOp>,
}

impl BodyRules {
    /// Whether the body is left alone (and need not be buffered).
    pub fn is_empty(&self) -> bool {
        self.convert.is_none() && self.json.is_empty()
    }
}

/// Rules for the request phase.
#[derive(Debug, Default, Clone)]
pub struct RequestRules {
    /// Header operations.
    pub headers: PairOps,
    /// Path rewrite.
    pub path: Option<PathRewrite>,
    /// Query parameter operations (names as decoded text).
    pub query: PairOps,
    /// Body rules.
    pub body: BodyRules,
}

impl RequestRules {
    /// Whether the request phase has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
            && self.path.is_none()
            && self.query.is_empty()
            && self.body.is_empty()
    }
}

/// Rules for the response phase.
#[derive(Debug, Default, Clone)]
pub struct ResponseRules {
    /// `(from, to)` status mappings.
    pub status: Vec<(u16, u16)>,
    /// Header operations.
    pub headers: PairOps,
    /// Body rules.
    pub body: BodyRules,
}

impl ResponseRules {
    /// Whether the response phase has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.status.is_empty() && self.headers.is_empty() && self.body.is_empty()
    }
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Request rules.
    pub request: RequestRules,
    /// Response rules.
    pub response: ResponseRules,
    /// Largest body the plugin parses.
    pub max_body_bytes: usize,
}

/// Headers whose values describe the message framing, which belongs to the gateway.
const FRAMING: &[&str] = &["content-length", "transfer-encoding"];

/// Validate a parsed config, collecting every problem (with its config path) before failing.
pub fn validate(raw: RawConfig) -> Result<Rules, String> {
    let mut errors = Vec::new();
    let max_body_bytes = match raw.max_body_bytes {
        Some(0) => {
            errors.push("max_body_bytes: must be greater than 0".to_owned());
            0
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => usize::try_from(DEFAULT_MAX_BODY_BYTES).unwrap_or(usize::MAX),
    };
    let request = RequestRules {
        headers: header_ops("request.headers", raw.request.headers, &mut errors),
        path: raw
            .request
            .path
            .and_then(|p| path_rewrite("request.path", p, &mut errors)),
        query: query_ops("request.query", raw.request.query, &mut errors),
        body: body_rules("request.body", raw.request.body, true, &mut errors),
    };
    let mut status = Vec::new();
    for (from, to) in raw.response.status {
        match from.parse::<u16>() {
            Ok(f) if (100..=599).contains(&f) => {
                if (100..=599).contains(&to) {
                    status.push((f, to));
                } else {
                    errors.push(format!("response.status.{from}: {to} is not in 100..=599"));
                }
            }
            _ => errors.push(format!(
                "response.status: key {from:?} is not a status code in 100..=599"
            )),
        }
    }
    let response = ResponseRules {
        status,
        headers: header_ops("response.headers", raw.response.headers, &mut errors),
        body: body_rules("response.body", raw.response.body, false, &mut errors),
    };
    if errors.is_empty() {
        Ok(Rules {
            request,
            response,
            max_body_bytes,
        })
    } else {
        Err(errors.join("; "))
    }
}

fn flatten_add(add: BTreeMap<String, OneOrMany>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, values) in add {
        match values {
            OneOrMany::One(v) => out.push((name, v)),
            OneOrMany::Many(vs) => out.extend(vs.into_iter().map(|v| (name.clone(), v))),
        }
    }
    out
}

fn header_ops(at: &str, raw: RawPairs, errors: &mut Vec<String>) -> PairOps {
    let mut ops = PairOps::default();
    for name in raw.remove {
        if let Some(name) = header_name(&format!("{at}.remove"), &name, errors) {
            ops.remove.push(name);
        }
    }
    for (from, to) in raw.rename {
        let where_ = format!("{at}.rename");
        let from = header_name(&where_, &from, errors);
        let to = header_name(&where_, &to, errors);
        if let (Some(from), Some(to)) = (from, to) {
            ops.rename.push((from, to));
        }
    }
    for (name, value) in raw.set {
        let where_ = format!("{at}.set");
        if let Some(name) = header_name(&where_, &name, errors)
            && header_value(&where_, &name, &value, errors)
        {
            ops.set.push((name, value));
        }
    }
    for (name, value) in flatten_add(raw.add) {
        let where_ = format!("{at}.add");
        if let Some(name) = header_name(&where_, &name, errors)
            && header_value(&where_, &name, &value, errors)
        {
            ops.add.push((name, value));
        }
    }
    ops
}

/// A header name is an RFC 9110 token; it is returned lower case. Framing headers are refused.
fn header_name(at: &str, name: &str, errors: &mut Vec<String>) -> Option<String> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        errors.push(format!("{at}: invalid header name {name:?}"));
        return None;
    }
    let name = name.to_ascii_lowercase();
    if FRAMING.contains(&name.as_str()) {
        errors.push(format!(
            "{at}: header {name:?} is managed by the gateway and cannot be changed"
        ));
        return None;
    }
    Some(name)
}

/// No control characters other than tab, no surrounding whitespace.
fn header_value(at: &str, name: &str, value: &str, errors: &mut Vec<String>) -> bool {
    let bad_char = value.chars().any(|c| c.is_control() && c != '\t');
    let padded = value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']);
    if bad_char || padded {
        errors.push(format!(
            "{at}: invalid value {value:?} for header {name:?} (control characters or \
             surrounding whitespace)"
        ));
        return false;
    }
    true
}

fn query_ops(at: &str, raw: RawPairs, errors: &mut Vec<String>) -> PairOps {
    let check = |where_: &str, name: &str, errors: &mut Vec<String>| {
        if name.is_empty() {
            errors.push(format!("{at}.{where_}: empty parameter name"));
            false
        } else {
            true
        }
    };
    let mut ops = PairOps::default();
    for name in raw.remove {
        if check("remove", &name, errors) {
            ops.remove.push(name);
        }
    }
    for (from, to) in raw.rename {
        if check("rename", &from, errors) && check("rename", &to, errors) {
            ops.rename.push((from, to));
        }
    }
    for (name, value) in raw.set {
        if check("set", &name, errors) {
            ops.set.push((name, value));
        }
    }
    for (name, value) in flatten_add(raw.add) {
        if check("add", &name, errors) {
            ops.add.push((name, value));
        }
    }
    ops
}

fn path_rewrite(at: &str, raw: RawPath, errors: &mut Vec<String>) -> Option<PathRewrite> {
    let result = match (raw.strip_prefix, raw.prefix, raw.regex, raw.replace) {
        (Some(prefix), None, None, None) => PathRewrite::prefix(&prefix, ""),
        (None, Some(prefix), None, Some(replace)) => PathRewrite::prefix(&prefix, &replace),
        (None, None, Some(pattern), Some(replace)) => PathRewrite::regex(&pattern, &replace),
        (None, Some(_), None, None) | (None, None, Some(_), None) => {
            Err("`prefix` and `regex` need `replace`".to_owned())
        }
        (Some(_), None, None, Some(_)) => {
            Err("`strip_prefix` takes no `replace` (use `prefix` + `replace`)".to_owned())
        }
        _ => Err("set exactly one of `strip_prefix`, `prefix` or `regex`".to_owned()),
    };
    result.map_err(|e| errors.push(format!("{at}: {e}"))).ok()
}

fn body_rules(at: &str, raw: RawBody, request: bool, errors: &mut Vec<String>) -> BodyRules {
    let convert = match raw.convert.as_deref() {
        None => None,
        Some("form-to-json") if request => Some(Convert::FormToJson),
        Some("json-to-form") if request => Some(Convert::JsonToForm),
        Some("xml-to-json") if !request => Some(Convert::XmlToJson),
        Some(other) => {
            let allowed = if request {
                "\"form-to-json\" or \"json-to-form\""
            } else {
                "\"xml-to-json\""
            };
            errors.push(format!(
                "{at}.convert: unknown conversion {other:?} (expected {allowed})"
            ));
            None
        }
    };
    let mut json = Vec::new();
    for (i, op) in raw.json.into_iter().enumerate() {
        match json_op(op) {
            Ok(op) => json.push(op),
            Err(e) => errors.push(format!("{at}.json[{i}]: {e}")),
        }
    }
    BodyRules { convert, json }
}

fn json_op(raw: RawJsonOp) -> Result<JsonOp, String> {
    let non_root = |p: &str| {
        let pointer = Pointer::parse(p)?;
        if pointer.is_root() {
            Err("the path must name a field, not the whole body".to_owned())
        } else {
            Ok(pointer)
        }
    };
    let key = |k: String| {
        if k.is_empty() {
            Err("`key` must not be empty".to_owned())
        } else {
            Ok(k)
        }
    };
    Ok(match raw {
        RawJsonOp::Set { path, value } => JsonOp::Set(Pointer::parse(&path)?, value),
        RawJsonOp::Remove { path } => JsonOp::Remove(non_root(&path)?),
        RawJsonOp::Rename { path, to } => {
            if to.is_empty() || to.contains('/') {
                return Err("`to` of a rename is the new field name (no `/`)".to_owned());
            }
            JsonOp::Rename(non_root(&path)?, to)
        }
        RawJsonOp::Move { path, to } => JsonOp::Move(non_root(&path)?, non_root(&to)?),
        RawJsonOp::Wrap { key: k } => JsonOp::Wrap(key(k)?),
        RawJsonOp::Unwrap { key: k } => JsonOp::Unwrap(key(k)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Rules, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string())?;
        validate(raw)
    }

    #[test]
    fn empty_config_does_nothing() {
        let rules = parse(serde_json::json!({})).expect("valid");
        assert!(rules.request.is_empty() && rules.response.is_empty());
        assert_eq!(rules.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn full_config() {
        let rules = parse(serde_json::json!({
            "max_body_bytes": 2048,
            "request": {
                "headers": { "remove": ["X-A"], "rename": { "x-old": "X-New" }, "set": { "x-s": "1" }, "add": { "x-m": ["a", "b"] } },
                "path": { "prefix": "/api/v1", "replace": "/v2" },
                "query": { "remove": ["debug"], "rename": { "q": "search" }, "set": { "page": "1" }, "add": { "tag": ["a", "b"] } },
                "body": { "convert": "form-to-json", "json": [
                    { "op": "set", "path": "/meta/source", "value": "gw" },
                    { "op": "remove", "path": "/password" },
                    { "op": "rename", "path": "/user", "to": "username" },
                    { "op": "move", "path": "/a/b", "to": "/c" },
                    { "op": "wrap", "key": "data" },
                ]},
            },
            "response": {
                "status": { "404": 200 },
                "body": { "convert": "xml-to-json", "json": [{ "op": "unwrap", "key": "envelope" }] },
            },
        }))
        .expect("valid");
        assert_eq!(rules.max_body_bytes, 2048);
        assert_eq!(rules.request.headers.remove, vec!["x-a"]);
        assert_eq!(
            rules.request.headers.rename,
            vec![("x-old".into(), "x-new".into())]
        );
        assert_eq!(
            rules.request.headers.add,
            vec![("x-m".into(), "a".into()), ("x-m".into(), "b".into())]
        );
        assert_eq!(
            rules.request.query.rename,
            vec![("q".into(), "search".into())]
        );
        assert_eq!(rules.request.body.convert, Some(Convert::FormToJson));
        assert_eq!(rules.request.body.json.len(), 5);
        assert_eq!(rules.response.status, vec![(404, 200)]);
        assert_eq!(rules.response.body.convert, Some(Convert::XmlToJson));
        assert!(rules.request.path.is_some());
    }

    #[test]
    fn every_mistake_is_named() {
        let err = parse(serde_json::json!({
            "max_body_bytes": 0,
            "request": {
                "headers": { "set": { "content-length": "1", "bad name": "x" }, "add": { "x-a": " pad" } },
                "path": { "strip_prefix": "/api", "regex": "^/x" },
                "query": { "remove": [""] },
                "body": { "convert": "xml-to-json", "json": [{ "op": "remove", "path": "" }, { "op": "set", "path": "no-slash", "value": 1 }] },
            },
            "response": { "status": { "abc": 200, "500": 700 }, "body": { "convert": "form-to-json" } },
        }))
        .expect_err("must fail");
        for needle in [
            "max_body_bytes: must be greater than 0",
            r#"request.headers.set: header "content-length" is managed by the gateway"#,
            r#"request.headers.set: invalid header name "bad name""#,
            r#"request.headers.add: invalid value " pad""#,
            "request.path: set exactly one of",
            "request.query.remove: empty parameter name",
            r#"request.body.convert: unknown conversion "xml-to-json""#,
            "request.body.json[0]: the path must name a field",
            "request.body.json[1]: a JSON pointer must be empty or start with `/`",
            r#"response.status: key "abc""#,
            "response.status.500: 700 is not in 100..=599",
            r#"response.body.convert: unknown conversion "form-to-json""#,
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn unknown_fields_and_ops_are_rejected() {
        let err = parse(serde_json::json!({ "request": { "header": {} } })).expect_err("fails");
        assert!(err.contains("unknown field `header`"), "{err}");
        let err = parse(serde_json::json!({ "request": { "body": { "json": [{ "op": "copy", "path": "/a" }] } } }))
            .expect_err("fails");
        assert!(err.contains("unknown variant `copy`"), "{err}");
        let err = parse(serde_json::json!({ "request": { "body": { "json": [{ "op": "remove", "path": "/a", "x": 1 }] } } }))
            .expect_err("fails");
        assert!(err.contains("unknown field `x`"), "{err}");
    }

    #[test]
    fn path_rewrite_needs_its_replacement() {
        let err = parse(serde_json::json!({ "request": { "path": { "prefix": "/a" } } }))
            .expect_err("fails");
        assert!(err.contains("need `replace`"), "{err}");
        let err = parse(
            serde_json::json!({ "request": { "path": { "strip_prefix": "/a", "replace": "/b" } } }),
        )
        .expect_err("fails");
        assert!(err.contains("takes no `replace`"), "{err}");
    }
}
