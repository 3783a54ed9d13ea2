//! Path patterns and the canonical form of a request path they are matched against.
//!
//! Matching is by segment: a path is split on `/`, empty segments are dropped (so `//admin` and
//! `/admin/` both read as `admin`), and each segment is percent-decoded and, under the
//! case-insensitive rule, lower-cased. A pattern is split and canonicalised the same way, so
//! `/caf%C3%A9` and `/café` are one pattern. Plain Rust with no host calls: unit-tested natively.

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Exactly this (decoded, maybe lower-cased) text.
    Literal(String),
    /// `*`: any one segment.
    One,
    /// `**` (last only): zero or more segments.
    Rest,
}

/// A validated path pattern: `/admin`, `/api/*/orders`, `/admin/**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parse a pattern as written in the config. The error says what is wrong, without the
    /// config path (the caller adds it).
    pub fn parse(text: &str, case_insensitive: bool) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("pattern {text:?} must start with `/`"));
        }
        if text.contains(['?', '#']) {
            return Err(format!(
                "pattern {text:?} must not contain a query (`?`) or fragment (`#`)"
            ));
        }
        let parts: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
        let last = parts.len().saturating_sub(1);
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "**" if i == last => Segment::Rest,
                "**" => {
                    return Err(format!(
                        "pattern {text:?}: `**` is only allowed as the last segment"
                    ));
                }
                "*" => Segment::One,
                p if p.contains('*') => {
                    return Err(format!(
                        "pattern {text:?}: `*` must be a whole segment (`/a/*/b`), not part of one"
                    ));
                }
                p => {
                    let decoded = decode_segment(p).ok_or_else(|| {
                        format!("pattern {text:?}: malformed percent-escape in {p:?}")
                    })?;
                    if decoded.contains('/') || decoded == "." || decoded == ".." {
                        return Err(format!(
                            "pattern {text:?}: segment {p:?} can never match a normalised path"
                        ));
                    }
                    Segment::Literal(fold(decoded, case_insensitive))
                }
            };
            segments.push(segment);
        }
        Ok(Self { segments })
    }

    /// Whether the canonical segments of a path (see [`canonical_segments`]) match.
    pub fn matches(&self, path: &[String]) -> bool {
        let mut i = 0;
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if i >= path.len() {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if path.get(i) != Some(lit) {
                        return false;
                    }
                }
            }
            i += 1;
        }
        i == path.len()
    }
}

/// The segments a request path is matched by: non-empty, percent-decoded (a malformed escape is
/// kept as written, though the gateway's path rule refuses those before any plugin runs) and
/// lower-cased under the case-insensitive rule.
pub fn canonical_segments(path: &str, case_insensitive: bool) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            fold(
                decode_segment(s).unwrap_or_else(|| s.to_owned()),
                case_insensitive,
            )
        })
        .collect()
}

/// The same segments with `;` parameters cut off (`admin;jsessionid=1` → `admin`), which is how
/// some servers (Tomcat, Jetty, Spring) read the path they route on.
pub fn without_params(segments: &[String]) -> Vec<String> {
    segments
        .iter()
        .map(|s| match s.split_once(';') {
            Some((head, _)) => head.to_owned(),
            None => s.clone(),
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether any segment is `.` or `..`; the gateway resolves those before any plugin runs, so
/// seeing one means something upstream may read the path differently: the caller refuses.
pub fn has_dot_segment(segments: &[String]) -> bool {
    segments.iter().any(|s| s == "." || s == "..")
}

fn fold(segment: String, case_insensitive: bool) -> String {
    if case_insensitive {
        segment.to_lowercase()
    } else {
        segment
    }
}

/// Percent-decode one segment; `None` on a malformed escape. Bytes that are not UTF-8 after
/// decoding are replaced (both sides of a comparison go through the same function).
fn decode_segment(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        let p = PathPattern::parse(pattern, false).expect("valid pattern");
        p.matches(&canonical_segments(path, false))
    }

    fn mi(pattern: &str, path: &str) -> bool {
        let p = PathPattern::parse(pattern, true).expect("valid pattern");
        p.matches(&canonical_segments(path, true))
    }

    #[test]
    fn exact_patterns() {
        assert!(m("/admin", "/admin"));
        assert!(m("/admin", "/admin/"), "trailing slash is ignored");
        assert!(m("/admin", "//admin"), "empty segments are ignored");
        assert!(m("/admin/", "/admin"));
        assert!(!m("/admin", "/admin/x"));
        assert!(!m("/admin", "/adminx"));
        assert!(!m("/admin", "/"));
        assert!(m("/", "/"));
        assert!(!m("/", "/a"));
    }

    #[test]
    fn single_segment_wildcard() {
        assert!(m("/api/*/orders", "/api/7/orders"));
        assert!(m("/api/*/orders", "/api/7/orders/"));
        assert!(!m("/api/*/orders", "/api/orders"));
        assert!(!m("/api/*/orders", "/api/1/2/orders"));
        assert!(!m("/api/*/orders", "/api/7/orders/1"));
        assert!(m("/*", "/x"));
        assert!(!m("/*", "/"));
    }

    #[test]
    fn rest_wildcard_matches_zero_or_more_segments() {
        assert!(m("/admin/**", "/admin"));
        assert!(m("/admin/**", "/admin/"));
        assert!(m("/admin/**", "/admin/users/7"));
        assert!(!m("/admin/**", "/administrator"));
        assert!(!m("/admin/**", "/api/admin"));
        assert!(m("/**", "/"));
        assert!(m("/**", "/any/thing"));
        assert!(m("/api/*/**", "/api/v1/x/y"));
        assert!(!m("/api/*/**", "/api"));
    }

    #[test]
    fn escapes_are_compared_decoded() {
        assert!(m("/admin", "/%61dmin"));
        assert!(m("/caf%C3%A9", "/café"));
        assert!(m("/café", "/caf%c3%a9"));
        assert!(m("/a%20b", "/a b"));
    }

    #[test]
    fn case_rule() {
        assert!(!m("/admin", "/ADMIN"));
        assert!(!m("/ADMIN", "/admin"));
        assert!(mi("/admin", "/ADMIN"));
        assert!(mi("/Admin/**", "/aDmIn/X"));
        assert!(mi("/admin", "/%41DMIN"));
    }

    #[test]
    fn matrix_params_and_dot_segments() {
        let segs = canonical_segments("/admin;jsessionid=1/users", false);
        assert_eq!(without_params(&segs), vec!["admin", "users"]);
        assert!(has_dot_segment(&canonical_segments("/a/../b", false)));
        assert!(has_dot_segment(&canonical_segments("/a/%2e%2e/b", false)));
        assert!(has_dot_segment(&without_params(&canonical_segments(
            "/a/..;x/b",
            false
        ))));
        assert!(!has_dot_segment(&canonical_segments(
            "/a/.well-known",
            false
        )));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for (pattern, needle) in [
            ("admin", "must start with `/`"),
            ("", "must start with `/`"),
            ("/a?x=1", "query"),
            ("/a/**/b", "only allowed as the last segment"),
            ("/api/v*", "whole segment"),
            ("/a/%zz", "malformed percent-escape"),
            ("/a/%2F", "can never match"),
            ("/a/../b", "can never match"),
        ] {
            let err = PathPattern::parse(pattern, false).expect_err(pattern);
            assert!(err.contains(needle), "{pattern}: {err}");
        }
    }
}
