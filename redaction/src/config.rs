//! The `redact` config: raw serde types as written in `gateway.toml`, validated into
//! [`Settings`] with every problem named before failing. Plain Rust, unit-tested natively.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::detect::{BUILTIN, Detector, Detectors};
use crate::json::FieldRule;
use crate::logscrub::LogField;
use crate::mask::{Masker, Style};
use crate::path::Pattern;

/// The config as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    style: Option<String>,
    replacement: Option<String>,
    partial_keep: Option<usize>,
    hash_key: Option<String>,
    #[serde(default)]
    fields: Vec<RawField>,
    detectors: Option<RawDetectors>,
    #[serde(default)]
    patterns: Vec<RawPattern>,
    response: Option<bool>,
    request: Option<bool>,
    decompress: Option<bool>,
    max_decompressed_bytes: Option<u64>,
    invalid_json: Option<String>,
    skip_content_types: Option<Vec<String>>,
    log: Option<RawLog>,
}

/// A field rule: a bare name or path, or a table with its own style.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawField {
    Rule(String),
    WithStyle(RawFieldTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFieldTable {
    #[serde(rename = "match")]
    rule: String,
    style: Option<String>,
}

/// Detectors: a list of names (default style each) or a table of name to style.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDetectors {
    Names(Vec<String>),
    Styles(BTreeMap<String, String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: String,
    regex: String,
    style: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    fields: Vec<String>,
    style: Option<String>,
}

/// What to do with a body labelled JSON that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidJson {
    /// Redact it as text with the detectors (field rules cannot apply).
    Text,
    /// Refuse it (502 for a response, 400 for a request).
    Refuse,
}

/// Access-log scrubbing.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// Fields whose masked values are put in the context for the access logger.
    pub fields: Vec<LogField>,
    /// Style for values masked whole (`client_ip`, `consumer`).
    pub style: Option<Style>,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Applies the mask styles.
    pub masker: Masker,
    /// Field and JSON path rules.
    pub fields: Vec<FieldRule>,
    /// Built-in detectors and custom patterns.
    pub detectors: Detectors,
    /// One name per rule, for the metrics' `rule` label (index = rule number).
    pub rule_names: Vec<String>,
    /// Redact response bodies.
    pub response: bool,
    /// Redact request bodies before they go upstream.
    pub request: bool,
    /// Decompress gzip/deflate bodies to redact them (else refuse them).
    pub decompress: bool,
    /// Cap on a decompressed body.
    pub max_decompressed: usize,
    /// Bodies labelled JSON that do not parse.
    pub invalid_json: InvalidJson,
    /// Content types passed through untouched (prefixes, lower case).
    pub skip_content_types: Vec<String>,
    /// Access-log scrubbing.
    pub log: LogSettings,
    /// The gateway's native copy of this config (contract 0.2 `redaction`), which JSON
    /// documents go through in the plugin; none until [`Settings::with_gateway`] made one.
    #[cfg(target_arch = "wasm32")]
    pub gateway: Option<std::rc::Rc<tollgate_sdk::redaction::Policy>>,
}

/// Content types that carry no text to scan, passed through untouched by default.
pub const DEFAULT_SKIP: &[&str] = &[
    "image/",
    "audio/",
    "video/",
    "font/",
    "application/octet-stream",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/wasm",
    "application/grpc",
    "application/protobuf",
    "application/x-protobuf",
];

const DEFAULT_REPLACEMENT: &str = "[REDACTED]";
const DEFAULT_KEEP: usize = 4;
const DEFAULT_MAX_DECOMPRESSED: u64 = 8 * 1024 * 1024;
const MAX_DECOMPRESSED_LIMIT: u64 = 1024 * 1024 * 1024;
const MIN_KEY_BYTES: usize = 16;

/// Validate a parsed config, collecting every problem before failing.
pub fn validate(raw: RawConfig) -> Result<Settings, String> {
    let mut errors = Vec::new();
    let default_style = match &raw.style {
        Some(s) => Style::parse("style", s, &mut errors).unwrap_or(Style::Full),
        None => Style::Full,
    };
    let style_of = |at: &str, s: &Option<String>, errors: &mut Vec<String>| match s {
        Some(s) => Style::parse(at, s, errors).unwrap_or(default_style),
        None => default_style,
    };
    let mut uses_hash = default_style == Style::Hash;
    let mut rule_names = Vec::new();

    let mut fields = Vec::new();
    for (i, field) in raw.fields.iter().enumerate() {
        let at = format!("fields[{i}]");
        let (text, style) = match field {
            RawField::Rule(text) => (text, default_style),
            RawField::WithStyle(t) => (
                &t.rule,
                style_of(&format!("{at}.style"), &t.style, &mut errors),
            ),
        };
        match Pattern::parse(text) {
            Ok(pattern) => {
                uses_hash |= style == Style::Hash;
                fields.push(FieldRule {
                    pattern,
                    style,
                    rule: rule_names.len(),
                });
                rule_names.push(format!("field:{text}"));
            }
            Err(e) => errors.push(format!("{at}: {e}")),
        }
    }

    let mut detectors = Vec::new();
    let named: Vec<(String, Style)> = match &raw.detectors {
        None => Vec::new(),
        Some(RawDetectors::Names(names)) => {
            names.iter().map(|n| (n.clone(), default_style)).collect()
        }
        Some(RawDetectors::Styles(table)) => table
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    style_of(&format!("detectors.{n}"), &Some(s.clone()), &mut errors),
                )
            })
            .collect(),
    };
    for (name, style) in named {
        if rule_names.contains(&name) {
            errors.push(format!("detectors: {name:?} is listed twice"));
            continue;
        }
        match Detector::builtin(&name, style, rule_names.len()) {
            Ok(d) => {
                uses_hash |= style == Style::Hash;
                detectors.push(d);
                rule_names.push(name);
            }
            Err(e) => errors.push(format!("detectors: {e}")),
        }
    }
    for (i, p) in raw.patterns.iter().enumerate() {
        let at = format!("patterns[{i}]");
        let style = style_of(&format!("{at}.style"), &p.style, &mut errors);
        let name_ok = !p.name.is_empty()
            && p.name.len() <= 64
            && p.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !name_ok {
            errors.push(format!(
                "{at}.name: {:?} must be 1-64 characters of letters, digits, `_`, `-` or `.`",
                p.name
            ));
            continue;
        }
        if BUILTIN.contains(&p.name.as_str()) || rule_names.contains(&p.name) {
            errors.push(format!(
                "{at}.name: {:?} is already the name of another rule",
                p.name
            ));
            continue;
        }
        match Detector::custom(&p.regex, style, rule_names.len()) {
            Ok(d) => {
                uses_hash |= style == Style::Hash;
                detectors.push(d);
                rule_names.push(p.name.clone());
            }
            Err(e) => errors.push(format!("{at}.regex: {e}")),
        }
    }

    let raw_log = raw.log.unwrap_or_default();
    let mut log = LogSettings::default();
    if let Some(s) = &raw_log.style {
        log.style = Style::parse("log.style", s, &mut errors);
    }
    for name in &raw_log.fields {
        match LogField::parse(name) {
            Some(f) if log.fields.contains(&f) => {
                errors.push(format!("log.fields: {name:?} is listed twice"));
            }
            Some(f) => log.fields.push(f),
            None => errors.push(format!(
                "log.fields: unknown field {name:?} (expected one of {})",
                LogField::NAMES.join(", ")
            )),
        }
    }
    let masks_whole = log.fields.iter().any(|f| f.masked_whole());
    if masks_whole {
        uses_hash |= log.style.unwrap_or(default_style) == Style::Hash;
    }

    let replacement = raw
        .replacement
        .unwrap_or_else(|| DEFAULT_REPLACEMENT.to_owned());
    if replacement.chars().count() > 256 || replacement.chars().any(char::is_control) {
        errors.push("replacement: at most 256 characters, no control characters".into());
    }
    let keep = raw.partial_keep.unwrap_or(DEFAULT_KEEP);
    if keep > 16 {
        errors.push(format!("partial_keep: {keep} is more than 16"));
    }
    let key = raw.hash_key.as_deref().map(str::as_bytes);
    match key {
        Some(k) if k.len() < MIN_KEY_BYTES => errors.push(format!(
            "hash_key: at least {MIN_KEY_BYTES} bytes (use a random secret; it keys the HMAC)"
        )),
        None if uses_hash => errors.push(
            "hash_key: required when a rule uses style \"hash\" (a secret of at least 16 bytes)"
                .into(),
        ),
        _ => {}
    }

    let max_decompressed = raw
        .max_decompressed_bytes
        .unwrap_or(DEFAULT_MAX_DECOMPRESSED);
    if !(1..=MAX_DECOMPRESSED_LIMIT).contains(&max_decompressed) {
        errors.push(format!(
            "max_decompressed_bytes: {max_decompressed} is not in 1..={MAX_DECOMPRESSED_LIMIT}"
        ));
    }
    let invalid_json = match raw.invalid_json.as_deref() {
        None | Some("text") => InvalidJson::Text,
        Some("refuse") => InvalidJson::Refuse,
        Some(other) => {
            errors.push(format!(
                "invalid_json: {other:?} (expected \"text\" or \"refuse\")"
            ));
            InvalidJson::Text
        }
    };
    let skip_content_types = match raw.skip_content_types {
        Some(list) => list.iter().map(|t| t.trim().to_ascii_lowercase()).collect(),
        None => DEFAULT_SKIP.iter().map(|t| (*t).to_owned()).collect(),
    };

    let response = raw.response.unwrap_or(true);
    let request = raw.request.unwrap_or(false);
    let has_rules = !fields.is_empty() || !detectors.is_empty();
    if !has_rules && !masks_whole {
        errors.push(
            "nothing to redact: configure `fields`, `detectors` or `patterns` (or log fields \
             `client_ip`/`consumer`)"
                .into(),
        );
    }
    if !response && !request && log.fields.is_empty() {
        errors.push(
            "nothing to do: `response` and `request` are false and `log.fields` is empty".into(),
        );
    }
    for f in log.fields.iter().filter(|f| f.masked_whole()) {
        rule_names.push(format!("log:{}", f.name()));
    }

    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Settings {
        masker: Masker::new(replacement, keep, key),
        fields,
        detectors: Detectors::new(detectors),
        rule_names,
        response,
        request,
        decompress: raw.decompress.unwrap_or(true),
        max_decompressed: usize::try_from(max_decompressed).unwrap_or(usize::MAX),
        invalid_json,
        skip_content_types,
        log,
        #[cfg(target_arch = "wasm32")]
        gateway: None,
    })
}

impl Settings {
    /// Have the gateway compile `config` (the JSON these settings were validated from), so
    /// that JSON documents are masked natively. If it refuses, the plugin masks them itself.
    #[cfg(target_arch = "wasm32")]
    pub fn with_gateway(mut self, config: &str) -> Self {
        self.gateway = tollgate_sdk::redaction::Policy::create(config)
            .ok()
            .map(std::rc::Rc::new);
        self
    }

    /// The rule index under which a whole-value log field counts.
    pub fn log_rule(&self, field: LogField) -> Option<usize> {
        let name = format!("log:{}", field.name());
        self.rule_names.iter().position(|n| *n == name)
    }

    /// The style for log fields masked whole.
    pub fn log_style(&self, default: Style) -> Style {
        self.log.style.unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Settings, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&v.to_string())?;
        validate(raw)
    }

    #[test]
    fn full_config() {
        let s = parse(json!({
            "style": "partial",
            "hash_key": "0123456789abcdef0123",
            "fields": ["ssn", {"match": "$.user.email", "style": "hash"}],
            "detectors": {"card": "partial", "email": "full"},
            "patterns": [{"name": "employee", "regex": "EMP-[0-9]{6}"}],
            "request": true,
            "decompress": false,
            "max_decompressed_bytes": 1024,
            "invalid_json": "refuse",
            "skip_content_types": ["Image/"],
            "log": {"fields": ["query", "client_ip"], "style": "hash"},
        }))
        .expect("valid");
        assert_eq!(
            s.rule_names,
            [
                "field:ssn",
                "field:$.user.email",
                "card",
                "email",
                "employee",
                "log:client_ip"
            ]
        );
        assert_eq!(s.fields[0].style, Style::Partial);
        assert_eq!(s.fields[1].style, Style::Hash);
        assert!(s.response && s.request && !s.decompress);
        assert_eq!(s.max_decompressed, 1024);
        assert_eq!(s.invalid_json, InvalidJson::Refuse);
        assert_eq!(s.skip_content_types, ["image/"]);
        assert_eq!(s.log.fields, [LogField::Query, LogField::ClientIp]);
        assert_eq!(s.log_rule(LogField::ClientIp), Some(5));
    }

    #[test]
    fn defaults() {
        let s = parse(json!({"detectors": ["email"]})).expect("valid");
        assert!(s.response && !s.request && s.decompress);
        assert_eq!(s.max_decompressed, 8 * 1024 * 1024);
        assert_eq!(s.invalid_json, InvalidJson::Text);
        assert!(s.skip_content_types.iter().any(|t| t == "image/"));
        assert_eq!(s.masker.mask(Style::Full, "x"), "[REDACTED]");
    }

    #[test]
    fn every_problem_is_named() {
        let err = parse(json!({
            "style": "blur",
            "fields": ["user.email", {"match": "$.a", "style": "zap"}],
            "detectors": ["email", "passport", "email"],
            "patterns": [{"name": "card", "regex": "x"}, {"name": "p", "regex": "("}, {"name": "bad name", "regex": "x"}],
            "partial_keep": 40,
            "max_decompressed_bytes": 0,
            "invalid_json": "maybe",
            "log": {"fields": ["cookie", "query", "query"]},
        }))
        .expect_err("invalid");
        for needle in [
            "style: unknown style \"blur\"",
            "fields[0]: \"user.email\": a JSON path starts with `$`",
            "fields[1].style: unknown style \"zap\"",
            "detectors: unknown detector \"passport\"",
            "detectors: \"email\" is listed twice",
            "patterns[0].name: \"card\" is already the name",
            "patterns[1].regex:",
            "patterns[2].name:",
            "partial_keep: 40",
            "max_decompressed_bytes: 0",
            "invalid_json: \"maybe\"",
            "log.fields: unknown field \"cookie\"",
            "log.fields: \"query\" is listed twice",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn hash_needs_a_long_enough_key() {
        let err = parse(json!({"detectors": {"email": "hash"}})).expect_err("no key");
        assert!(err.contains("hash_key: required"), "{err}");
        let err = parse(json!({"detectors": ["email"], "hash_key": "short"})).expect_err("short");
        assert!(err.contains("at least 16 bytes"), "{err}");
        let err = parse(json!({"log": {"fields": ["client_ip"], "style": "hash"}}))
            .expect_err("log hash needs a key");
        assert!(err.contains("hash_key: required"), "{err}");
    }

    #[test]
    fn a_config_must_do_something() {
        let err = parse(json!({})).expect_err("empty");
        assert!(err.contains("nothing to redact"), "{err}");
        let err = parse(json!({"detectors": ["email"], "response": false})).expect_err("idle");
        assert!(err.contains("nothing to do"), "{err}");
        // Masking the client address in the log needs no other rule.
        parse(json!({"response": false, "log": {"fields": ["client_ip"]}})).expect("valid");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse(json!({"detectors": ["email"], "stlye": "full"})).expect_err("typo");
        assert!(err.contains("unknown field `stlye`"), "{err}");
    }
}
