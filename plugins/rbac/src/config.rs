//! The `rbac` config as written in `gateway.toml` (raw serde types), validated into a
//! [`Policy`]. Every problem is collected with its config path before failing.

use serde::Deserialize;

use crate::pattern::PathPattern;
use crate::policy::{Effect, Methods, Policy, Rule, Subjects};

/// The `[plugins.NAME.config]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    case_insensitive_paths: bool,
    #[serde(default)]
    head_as_get: bool,
    #[serde(default)]
    allow_method_override: bool,
    rules: Option<Vec<RawRule>>,
}

/// One `[[rules]]` entry. Required keys are `Option`s so a missing one is reported with its
/// rule index rather than by serde without one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    consumers: Vec<String>,
    #[serde(default)]
    anonymous: bool,
    methods: Option<Vec<String>>,
    paths: Option<Vec<String>>,
    effect: Option<String>,
}

/// Validate a parsed config.
pub fn validate(raw: RawConfig) -> Result<Policy, String> {
    let mut errors = Vec::new();
    let raw_rules = match raw.rules {
        None => {
            errors.push("rules: missing; give at least one rule (rbac denies by default)".into());
            Vec::new()
        }
        Some(rules) if rules.is_empty() => {
            errors.push("rules: empty; give at least one rule (rbac denies by default)".into());
            Vec::new()
        }
        Some(rules) => rules,
    };
    let rules = raw_rules
        .into_iter()
        .enumerate()
        .filter_map(|(i, rule)| validate_rule(i, rule, raw.case_insensitive_paths, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Policy {
        case_insensitive_paths: raw.case_insensitive_paths,
        head_as_get: raw.head_as_get,
        allow_method_override: raw.allow_method_override,
        rules,
    })
}

fn validate_rule(
    i: usize,
    raw: RawRule,
    case_insensitive: bool,
    errors: &mut Vec<String>,
) -> Option<Rule> {
    let at = format!("rules[{i}]");
    let before = errors.len();

    let subjects = validate_subjects(&at, &raw, errors);
    let methods = match raw.methods {
        None => {
            errors.push(format!(
                "{at}.methods: missing (a list of methods, or [\"*\"])"
            ));
            None
        }
        Some(methods) => validate_methods(&at, methods, errors),
    };
    let paths = match raw.paths {
        None => {
            errors.push(format!("{at}.paths: missing (a list of path patterns)"));
            Vec::new()
        }
        Some(paths) if paths.is_empty() => {
            errors.push(format!("{at}.paths: empty"));
            Vec::new()
        }
        Some(paths) => paths
            .iter()
            .enumerate()
            .filter_map(|(j, p)| {
                PathPattern::parse(p, case_insensitive)
                    .map_err(|e| errors.push(format!("{at}.paths[{j}]: {e}")))
                    .ok()
            })
            .collect(),
    };
    let effect = match raw.effect.as_deref() {
        Some("allow") => Some(Effect::Allow),
        Some("deny") => Some(Effect::Deny),
        Some(other) => {
            errors.push(format!(
                "{at}.effect: {other:?} is not \"allow\" or \"deny\""
            ));
            None
        }
        None => {
            errors.push(format!("{at}.effect: missing (\"allow\" or \"deny\")"));
            None
        }
    };

    if errors.len() != before {
        return None;
    }
    Some(Rule {
        subjects,
        methods: methods?,
        paths,
        effect: effect?,
    })
}

fn validate_subjects(at: &str, raw: &RawRule, errors: &mut Vec<String>) -> Subjects {
    let mut subjects = Subjects {
        anonymous: raw.anonymous,
        ..Subjects::default()
    };
    for (field, names, out) in [
        ("consumers", &raw.consumers, &mut subjects.consumers),
        ("roles", &raw.roles, &mut subjects.roles),
    ] {
        for (j, name) in names.iter().enumerate() {
            if name == "*" {
                subjects.any_consumer = true;
            } else if name.is_empty() || name.trim() != name || name.contains(',') {
                errors.push(format!(
                    "{at}.{field}[{j}]: {name:?} is not a valid name (empty, surrounding \
                     whitespace or a comma)"
                ));
            } else {
                out.push(name.clone());
            }
        }
    }
    if raw.roles.is_empty() && raw.consumers.is_empty() && !raw.anonymous {
        errors.push(format!(
            "{at}: names nobody; set `roles`, `consumers` (\"*\" = any consumer) or \
             `anonymous = true`"
        ));
    }
    subjects
}

fn validate_methods(at: &str, methods: Vec<String>, errors: &mut Vec<String>) -> Option<Methods> {
    if methods.is_empty() {
        errors.push(format!("{at}.methods: empty (use [\"*\"] for any method)"));
        return None;
    }
    if methods.iter().any(|m| m == "*") {
        if methods.len() > 1 {
            errors.push(format!("{at}.methods: \"*\" must be the only entry"));
            return None;
        }
        return Some(Methods::Any);
    }
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let mut list = Vec::with_capacity(methods.len());
    for (j, m) in methods.iter().enumerate() {
        if m.is_empty() || !m.bytes().all(is_tchar) {
            errors.push(format!("{at}.methods[{j}]: {m:?} is not an HTTP method"));
        } else {
            list.push(m.to_ascii_uppercase());
        }
    }
    Some(Methods::List(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Policy, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string())?;
        validate(raw)
    }

    #[test]
    fn full_config() {
        let p = parse(serde_json::json!({
            "case_insensitive_paths": true,
            "head_as_get": true,
            "allow_method_override": true,
            "rules": [
                { "roles": ["admin", "*"], "consumers": ["alice"], "methods": ["get", "POST"],
                  "paths": ["/Admin/**"], "effect": "allow" },
                { "anonymous": true, "methods": ["*"], "paths": ["/public"], "effect": "deny" },
            ],
        }))
        .expect("valid");
        assert!(p.case_insensitive_paths && p.head_as_get && p.allow_method_override);
        assert_eq!(p.rules.len(), 2);
        let r = &p.rules[0];
        assert_eq!(r.subjects.roles, vec!["admin"]);
        assert_eq!(r.subjects.consumers, vec!["alice"]);
        assert!(r.subjects.any_consumer && !r.subjects.anonymous);
        assert_eq!(r.methods, Methods::List(vec!["GET".into(), "POST".into()]));
        assert_eq!(r.effect, Effect::Allow);
        assert_eq!(p.rules[1].methods, Methods::Any);
        assert_eq!(p.rules[1].effect, Effect::Deny);
    }

    #[test]
    fn defaults_are_strict() {
        let p = parse(serde_json::json!({ "rules": [
            { "roles": ["a"], "methods": ["GET"], "paths": ["/"], "effect": "allow" },
        ]}))
        .expect("valid");
        assert!(!p.case_insensitive_paths && !p.head_as_get && !p.allow_method_override);
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let err = parse(serde_json::json!({ "rules": [
            { "methods": [], "paths": ["admin"], "effect": "permit" },
            { "roles": ["", "a,b"], "methods": ["*", "GET"], "paths": [] },
            { "consumers": ["x"], "methods": ["GE T"], "paths": ["/a/**/b"], "effect": "deny" },
            { "roles": ["x"] },
        ]}))
        .expect_err("must fail");
        for needle in [
            "rules[0]: names nobody",
            "rules[0].methods: empty",
            "rules[0].paths[0]: pattern \"admin\" must start with `/`",
            "rules[0].effect: \"permit\" is not \"allow\" or \"deny\"",
            "rules[1].roles[0]: \"\" is not a valid name",
            "rules[1].roles[1]: \"a,b\" is not a valid name",
            "rules[1].methods: \"*\" must be the only entry",
            "rules[1].paths: empty",
            "rules[1].effect: missing",
            "rules[2].methods[0]: \"GE T\" is not an HTTP method",
            "rules[2].paths[0]: pattern \"/a/**/b\": `**` is only allowed as the last segment",
            "rules[3].methods: missing",
            "rules[3].paths: missing",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn rules_are_required_and_unknown_keys_refused() {
        let err = parse(serde_json::json!({})).expect_err("must fail");
        assert!(err.contains("rules: missing"), "{err}");
        let err = parse(serde_json::json!({ "rules": [] })).expect_err("must fail");
        assert!(err.contains("rules: empty"), "{err}");
        let err = parse(serde_json::json!({ "rules": [], "case_sensitive": true }))
            .expect_err("must fail");
        assert!(err.contains("unknown field `case_sensitive`"), "{err}");
        let err = parse(serde_json::json!({ "rules": [
            { "role": ["a"], "methods": ["GET"], "paths": ["/"], "effect": "allow" },
        ]}))
        .expect_err("must fail");
        assert!(err.contains("unknown field `role`"), "{err}");
    }
}
