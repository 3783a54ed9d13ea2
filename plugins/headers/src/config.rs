//! The `headers` config: raw serde types as written in `gateway.toml`, validated into [`Rules`].
//! Plain Rust with no host calls, so it is unit-tested natively.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The config as written: `request` and `response` tables of operations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    request: RawOps,
    #[serde(default)]
    response: RawOps,
}

/// One phase's operations as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOps {
    /// Header name to one value, or to a list of values, appended to the existing ones.
    #[serde(default)]
    add: BTreeMap<String, OneOrMany>,
    /// Header name to the one value that replaces every existing value.
    #[serde(default)]
    set: BTreeMap<String, String>,
    /// Header names whose every value is removed.
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The validated operations of one phase, names lower case, applied in field order:
/// remove, then set, then add.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ops {
    /// Headers to remove.
    pub remove: Vec<String>,
    /// Headers to replace with one value.
    pub set: Vec<(String, String)>,
    /// Values to append.
    pub add: Vec<(String, String)>,
}

impl Ops {
    /// Whether the phase has nothing to do (and so need not be called).
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// The validated config.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Operations on the request, before it goes upstream.
    pub request: Ops,
    /// Operations on the response, before it goes to the client.
    pub response: Ops,
}

/// Headers whose values describe the message framing, which belongs to the gateway.
const FRAMING: &[&str] = &["content-length", "transfer-encoding"];

/// Validate a parsed config, collecting every problem (with its config path) before failing.
pub fn validate(raw: RawConfig) -> Result<Rules, String> {
    let mut errors = Vec::new();
    let rules = Rules {
        request: validate_ops("request", raw.request, &mut errors),
        response: validate_ops("response", raw.response, &mut errors),
    };
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors.join("; "))
    }
}

fn validate_ops(phase: &str, raw: RawOps, errors: &mut Vec<String>) -> Ops {
    let mut ops = Ops::default();
    for name in raw.remove {
        if let Some(name) = check_name(&format!("{phase}.remove"), &name, errors) {
            ops.remove.push(name);
        }
    }
    for (name, value) in raw.set {
        let at = format!("{phase}.set");
        if let Some(name) = check_name(&at, &name, errors)
            && check_value(&at, &name, &value, errors)
        {
            ops.set.push((name, value));
        }
    }
    for (name, values) in raw.add {
        let at = format!("{phase}.add");
        let values = match values {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(vs) => vs,
        };
        if let Some(name) = check_name(&at, &name, errors) {
            for value in values {
                if check_value(&at, &name, &value, errors) {
                    ops.add.push((name.clone(), value));
                }
            }
        }
    }
    ops
}

/// A header name is an RFC 9110 token; it is returned lower case.
fn check_name(at: &str, name: &str, errors: &mut Vec<String>) -> Option<String> {
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

/// A header value has no control characters other than tab (so no CR, LF or NUL) and no
/// leading or trailing whitespace.
fn check_value(at: &str, name: &str, value: &str, errors: &mut Vec<String>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Rules, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string())?;
        validate(raw)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn full_config() {
        let rules = parse(serde_json::json!({
            "request": {
                "add": { "X-A": "1", "x-multi": ["a", "b"] },
                "set": { "x-b": "2" },
                "remove": ["X-C"],
            },
            "response": { "set": { "server": "tollgate" } },
        }))
        .expect("valid config");
        assert_eq!(
            rules.request,
            Ops {
                remove: vec!["x-c".into()],
                set: pairs(&[("x-b", "2")]),
                add: pairs(&[("x-a", "1"), ("x-multi", "a"), ("x-multi", "b")]),
            }
        );
        assert_eq!(rules.response.set, pairs(&[("server", "tollgate")]));
        assert!(rules.response.remove.is_empty() && rules.response.add.is_empty());
    }

    #[test]
    fn empty_config_has_no_operations() {
        let rules = validate(tollgate_sdk::parse_config("").expect("empty is {}")).expect("valid");
        assert!(rules.request.is_empty() && rules.response.is_empty());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = parse(serde_json::json!({ "request": { "append": {} } })).expect_err("must fail");
        assert!(
            err.starts_with("invalid config: request.append: unknown field `append`"),
            "{err}"
        );
        let err = parse(serde_json::json!({ "requests": {} })).expect_err("must fail");
        assert!(err.contains("unknown field `requests`"), "{err}");
    }

    #[test]
    fn every_invalid_header_is_named() {
        let err = parse(serde_json::json!({
            "request": { "set": { "bad name": "x", "x-ok": "line\r\nbreak" } },
            "response": { "remove": [""], "add": { "content-length": "1", "x-pad": " v" } },
        }))
        .expect_err("must fail");
        for needle in [
            r#"request.set: invalid header name "bad name""#,
            r#"request.set: invalid value "line\r\nbreak" for header "x-ok""#,
            r#"response.remove: invalid header name """#,
            r#"response.add: header "content-length" is managed by the gateway"#,
            r#"response.add: invalid value " v" for header "x-pad""#,
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn values_may_contain_tabs_and_non_ascii() {
        let rules =
            parse(serde_json::json!({ "request": { "set": { "x-a": "a\tb é" } } })).expect("valid");
        assert_eq!(rules.request.set, pairs(&[("x-a", "a\tb é")]));
    }
}
