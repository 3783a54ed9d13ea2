//! The plugin's config: raw serde types, validated into [`Settings`].

use serde::Deserialize;

/// `[plugins.NAME.config]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Request header carrying the key.
    #[serde(default = "default_header")]
    header: String,
    /// Methods the plugin applies to.
    #[serde(default = "default_methods")]
    methods: Vec<String>,
    /// How long a stored response is replayed, in seconds.
    #[serde(default = "default_ttl")]
    ttl_s: u64,
    /// How long the in-flight lock holds at most (a crashed gateway's lock expires), seconds.
    #[serde(default = "default_lock_ttl")]
    lock_ttl_s: u64,
    /// Requests of `methods` without the header are refused with 400.
    #[serde(default)]
    required: bool,
    /// Largest response body stored for replay; larger responses are not stored.
    #[serde(default = "default_max_response")]
    max_response_bytes: usize,
}

fn default_header() -> String {
    "idempotency-key".into()
}

fn default_methods() -> Vec<String> {
    vec!["POST".into(), "PATCH".into()]
}

fn default_ttl() -> u64 {
    86_400
}

fn default_lock_ttl() -> u64 {
    60
}

fn default_max_response() -> usize {
    256 * 1024
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub header: String,
    pub methods: Vec<String>,
    pub ttl_ms: u64,
    pub lock_ttl_ms: u64,
    pub required: bool,
    pub max_response_bytes: usize,
}

/// Most time a response is kept: 30 days.
const MAX_TTL_S: u64 = 30 * 86_400;
/// The state backend's value limit, minus room for the stored head.
const MAX_STORED_BODY: usize = 1024 * 1024 - 64 * 1024;

/// Check every field, reporting each mistake with its key.
pub fn validate(raw: RawConfig) -> Result<Settings, String> {
    let mut errors = Vec::new();
    let header = raw.header.trim().to_ascii_lowercase();
    if header.is_empty()
        || !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        errors.push(format!("header: `{}` is not a header name", raw.header));
    }
    let mut methods = Vec::new();
    for m in &raw.methods {
        let upper = m.trim().to_ascii_uppercase();
        if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(format!("methods: `{m}` is not a method"));
        } else if matches!(upper.as_str(), "GET" | "HEAD" | "OPTIONS") {
            errors.push(format!("methods: `{upper}` is already idempotent"));
        } else {
            methods.push(upper);
        }
    }
    if raw.methods.is_empty() {
        errors.push("methods: must name at least one method".into());
    }
    if !(1..=MAX_TTL_S).contains(&raw.ttl_s) {
        errors.push(format!(
            "ttl_s: {} is out of range (1..={MAX_TTL_S})",
            raw.ttl_s
        ));
    }
    if !(1..=3600).contains(&raw.lock_ttl_s) {
        errors.push(format!(
            "lock_ttl_s: {} is out of range (1..=3600)",
            raw.lock_ttl_s
        ));
    }
    if raw.max_response_bytes > MAX_STORED_BODY {
        errors.push(format!(
            "max_response_bytes: {} is over the limit of {MAX_STORED_BODY}",
            raw.max_response_bytes
        ));
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Settings {
        header,
        methods,
        ttl_ms: raw.ttl_s * 1000,
        lock_ttl_ms: raw.lock_ttl_s * 1000,
        required: raw.required,
        max_response_bytes: raw.max_response_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawConfig {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn defaults_and_ranges() {
        let s = validate(raw("{}")).expect("defaults are valid");
        assert_eq!(s.header, "idempotency-key");
        assert_eq!(s.methods, ["POST", "PATCH"]);
        assert_eq!(s.ttl_ms, 86_400_000);
        let err = validate(raw(r#"{"ttl_s": 0, "methods": ["GET"]}"#)).expect_err("bad");
        assert!(err.contains("ttl_s: 0 is out of range"), "{err}");
        assert!(err.contains("`GET` is already idempotent"), "{err}");
    }
}
