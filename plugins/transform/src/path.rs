//! Path rewrites: replace a prefix (on a segment boundary) or a regex match with captures.
//!
//! The gateway normalises every path by one rule, and `set-path` normalises again, so the
//! upstream receives exactly the path later plugins see. This module adds one refusal of its
//! own: a rewrite that produces a dot-segment (`.`, `..`, also encoded as `%2e`) or a `?`/`#` is
//! refused instead of being resolved, so a rewrite can never climb out of the prefix it targets.

use regex::{Regex, RegexBuilder};

/// Longest accepted regex pattern, in bytes.
const MAX_PATTERN_LEN: usize = 1024;
/// Cap on the compiled program (the `regex` crate's `size_limit`).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Cap on the lazy DFA's cache.
const REGEX_DFA_LIMIT: usize = 256 * 1024;
/// Cap on group nesting.
const REGEX_NEST_LIMIT: u32 = 32;

/// A validated rewrite.
#[derive(Debug, Clone)]
pub enum PathRewrite {
    /// Replace `from` (no trailing `/`) with `to` (no trailing `/`, may be empty) when the path
    /// is `from` or starts with `from/`.
    Prefix {
        /// Prefix to match.
        from: String,
        /// Replacement.
        to: String,
    },
    /// Replace the first match of `regex` with `replace` (`$1`, `${name}` expand captures).
    Regex {
        /// The compiled pattern.
        regex: Regex,
        /// The replacement template.
        replace: String,
    },
}

/// Why a rewritten path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteError(pub String);

impl PathRewrite {
    /// A prefix rewrite; `to` may be empty (strip).
    pub fn prefix(from: &str, to: &str) -> Result<Self, String> {
        check_literal("prefix", from)?;
        if from.trim_end_matches('/').is_empty() {
            return Err("the prefix must not be `/`".to_owned());
        }
        if !to.is_empty() {
            check_literal("replace", to)?;
        }
        Ok(PathRewrite::Prefix {
            from: from.trim_end_matches('/').to_owned(),
            to: to.trim_end_matches('/').to_owned(),
        })
    }

    /// A regex rewrite, compiled with size limits; the replacement must start with `/` and may
    /// only name groups the pattern has.
    pub fn regex(pattern: &str, replace: &str) -> Result<Self, String> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(format!("regex is longer than {MAX_PATTERN_LEN} bytes"));
        }
        let regex = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|e| format!("invalid regex: {e}"))?;
        if !replace.starts_with('/') {
            return Err("`replace` must start with `/`".to_owned());
        }
        if replace.contains(['?', '#']) {
            return Err("`replace` must not contain `?` or `#` (use `query` rules)".to_owned());
        }
        for group in template_groups(replace) {
            let known = match group.parse::<usize>() {
                Ok(i) => i < regex.captures_len(),
                Err(_) => regex.capture_names().flatten().any(|n| n == group),
            };
            if !known {
                return Err(format!(
                    "`replace` names group `{group}`, which the regex does not have"
                ));
            }
        }
        Ok(PathRewrite::Regex {
            regex,
            replace: replace.to_owned(),
        })
    }

    /// The rewritten path, `None` when the rule does not match, or an error when the result is
    /// not a path the plugin will send.
    pub fn apply(&self, path: &str) -> Result<Option<String>, RewriteError> {
        let rewritten = match self {
            PathRewrite::Prefix { from, to } => {
                let rest = match path.strip_prefix(from.as_str()) {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
                    _ => return Ok(None),
                };
                let joined = format!("{to}{rest}");
                if joined.is_empty() {
                    "/".to_owned()
                } else {
                    joined
                }
            }
            PathRewrite::Regex { regex, replace } => {
                if !regex.is_match(path) {
                    return Ok(None);
                }
                regex.replace(path, replace.as_str()).into_owned()
            }
        };
        check_rewritten(&rewritten)?;
        Ok(Some(rewritten))
    }
}

/// Config text that becomes part of a path: starts with `/`, no dot-segments, no `?`, `#`, `\`,
/// `%` or control characters.
fn check_literal(field: &str, text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("`{field}` must start with `/`"));
    }
    if text.chars().any(|c| c.is_control() || "?#\\%".contains(c)) {
        return Err(format!(
            "`{field}` must not contain `?`, `#`, `\\`, `%` or control characters"
        ));
    }
    if text.split('/').any(is_dot_segment) {
        return Err(format!("`{field}` must not contain `.` or `..` segments"));
    }
    Ok(())
}

/// The checks on a rewritten path that the host's normalisation would otherwise resolve
/// silently (dot-segments) or that would break the request line (`?`, `#`).
fn check_rewritten(path: &str) -> Result<(), RewriteError> {
    if !path.starts_with('/') {
        return Err(RewriteError(
            "the rewritten path does not start with `/`".into(),
        ));
    }
    if path.contains(['?', '#']) {
        return Err(RewriteError(
            "the rewritten path contains `?` or `#`".into(),
        ));
    }
    if path.split('/').any(is_dot_segment) {
        return Err(RewriteError(
            "the rewritten path contains a `.` or `..` segment".into(),
        ));
    }
    Ok(())
}

/// `.` or `..`, raw or with `%2e`/`%2E` for any dot.
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    let decoded = lower.replace("%2e", ".");
    decoded == "." || decoded == ".."
}

/// Group names referenced by a `regex` replacement template (`$1`, `$name`, `${name}`; `$$` is
/// a literal `$`), following the `regex` crate's syntax.
fn template_groups(template: &str) -> Vec<String> {
    let bytes = template.as_bytes();
    let mut groups = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => match template[i + 2..].find('}') {
                Some(end) => {
                    groups.push(template[i + 2..i + 2 + end].to_owned());
                    i += end + 3;
                }
                None => i += 2,
            },
            _ => {
                let name_len = template[i + 1..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                if name_len > 0 {
                    groups.push(template[i + 1..i + 1 + name_len].to_owned());
                }
                i += 1 + name_len;
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(rule: &PathRewrite, path: &str) -> Option<String> {
        rule.apply(path).expect("valid rewrite")
    }

    #[test]
    fn prefix_matches_on_segment_boundaries() {
        let strip = PathRewrite::prefix("/api/", "").expect("valid");
        assert_eq!(apply(&strip, "/api/users/7").as_deref(), Some("/users/7"));
        assert_eq!(apply(&strip, "/api").as_deref(), Some("/"));
        assert_eq!(apply(&strip, "/api/").as_deref(), Some("/"));
        assert_eq!(apply(&strip, "/apis/x"), None);
        assert_eq!(apply(&strip, "/other"), None);

        let replace = PathRewrite::prefix("/api/v1", "/v2/").expect("valid");
        assert_eq!(
            apply(&replace, "/api/v1/users").as_deref(),
            Some("/v2/users")
        );
        assert_eq!(apply(&replace, "/api/v1").as_deref(), Some("/v2"));
        assert_eq!(apply(&replace, "/api/v10"), None);
    }

    #[test]
    fn regex_rewrites_with_captures() {
        let rule = PathRewrite::regex(r"^/users/(?P<id>\d+)/orders/(\d+)$", "/orders/$2/by/${id}")
            .expect("valid");
        assert_eq!(
            apply(&rule, "/users/42/orders/7").as_deref(),
            Some("/orders/7/by/42")
        );
        assert_eq!(apply(&rule, "/users/x/orders/7"), None);
    }

    #[test]
    fn regex_rewrite_refuses_dot_segments_it_produces() {
        // A capture that is a legal segment on its own but becomes `..` next to the template.
        let rule = PathRewrite::regex(r"^/files/([^/]*)$", "/store/.$1/x").expect("valid");
        assert_eq!(apply(&rule, "/files/a").as_deref(), Some("/store/.a/x"));
        assert!(rule.apply("/files/.").is_err());
        assert!(rule.apply("/files/%2E").is_err());
        let rule = PathRewrite::regex(r"^/q/(.*)$", "/$1").expect("valid");
        assert!(rule.apply("/q/a?b").is_err());
    }

    #[test]
    fn bad_rules_are_refused_at_init() {
        assert!(PathRewrite::prefix("api", "").is_err());
        assert!(PathRewrite::prefix("/", "/x").is_err());
        assert!(PathRewrite::prefix("/api", "/v2/../admin").is_err());
        assert!(PathRewrite::prefix("/api", "/v2?x=1").is_err());
        assert!(PathRewrite::prefix("/api", "/%2e%2e").is_err());
        assert!(PathRewrite::regex("(", "/x").is_err());
        assert!(PathRewrite::regex("^/a", "b").is_err());
        assert!(PathRewrite::regex("^/(a)", "/$2").is_err());
        assert!(PathRewrite::regex("^/(a)", "/${name}").is_err());
        assert!(PathRewrite::regex("^/(a)", "/x?y").is_err());
        assert!(PathRewrite::regex(&"a".repeat(2000), "/x").is_err());
        // A pattern whose compiled form exceeds the size limit.
        let err = PathRewrite::regex(r"(\w{100}){100}", "/x").expect_err("too big");
        assert!(err.contains("invalid regex"), "{err}");
    }

    #[test]
    fn template_groups_follow_regex_syntax() {
        assert_eq!(
            template_groups("/a/$1/${x}/$$/$y_2-"),
            vec!["1", "x", "y_2"]
        );
    }
}
