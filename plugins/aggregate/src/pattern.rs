//! The `path` pattern (`/users/{id}/summary`) matched against the incoming request's path to
//! give `{path.NAME}` values. A `{name}` segment matches exactly one non-empty segment; other
//! segments must be equal. Plain Rust, unit-tested natively.

use crate::template::{is_identifier, percent_decode};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
    trailing_slash: bool,
}

impl PathPattern {
    /// Parse a pattern: starts with `/`; each segment is literal text or `{name}` (letters,
    /// digits, `_`), names unique.
    pub fn parse(pattern: &str) -> Result<PathPattern, String> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(format!("pattern {pattern:?} must start with `/`"));
        };
        let trailing_slash = rest.ends_with('/');
        let mut segments = Vec::new();
        let body = rest.strip_suffix('/').unwrap_or(rest);
        if !body.is_empty() {
            for seg in body.split('/') {
                if seg.is_empty() {
                    return Err(format!("pattern {pattern:?} has an empty segment"));
                }
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if !is_identifier(name) {
                        return Err(format!(
                            "pattern {pattern:?}: `{seg}` is not `{{name}}` with a name of \
                             letters, digits and `_`"
                        ));
                    }
                    if segments
                        .iter()
                        .any(|s| matches!(s, Segment::Param(n) if n == name))
                    {
                        return Err(format!("pattern {pattern:?} names `{name}` twice"));
                    }
                    segments.push(Segment::Param(name.to_owned()));
                } else if seg.contains(['{', '}']) {
                    return Err(format!(
                        "pattern {pattern:?}: a parameter must be a whole segment (`{seg}`)"
                    ));
                } else {
                    segments.push(Segment::Literal(seg.to_owned()));
                }
            }
        }
        Ok(PathPattern {
            segments,
            trailing_slash,
        })
    }

    /// Whether the pattern has this parameter.
    pub fn has_param(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Param(n) if n == name))
    }

    /// Match a (normalised) request path; the parameters' values are percent-decoded.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        if rest.ends_with('/') != self.trailing_slash && !rest.is_empty() {
            return None;
        }
        let body = rest.strip_suffix('/').unwrap_or(rest);
        let parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.push((name.clone(), percent_decode(part, false))),
            }
        }
        Some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        PathPattern::parse(pattern).expect("valid").matches(path)
    }

    #[test]
    fn parameters_are_captured_and_decoded() {
        assert_eq!(
            params("/users/{id}/orders/{order}", "/users/42/orders/a%20b"),
            Some(vec![
                ("id".to_owned(), "42".to_owned()),
                ("order".to_owned(), "a b".to_owned())
            ])
        );
        assert_eq!(
            params("/users/{id}", "/users/42"),
            Some(vec![("id".into(), "42".into())])
        );
        assert_eq!(params("/", "/"), Some(vec![]));
        assert_eq!(params("/a/", "/a/"), Some(vec![]));
    }

    #[test]
    fn other_shapes_do_not_match() {
        assert_eq!(params("/users/{id}", "/users"), None);
        assert_eq!(params("/users/{id}", "/users/42/x"), None);
        assert_eq!(params("/users/{id}", "/users/42/"), None);
        assert_eq!(params("/users/{id}", "/people/42"), None);
        assert_eq!(params("/a/", "/a"), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "users/{id}",
            "/u//x",
            "/u/{id}/{id}",
            "/u/x{id}",
            "/u/{i-d}",
            "/u/{}",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} was accepted");
        }
        let p = PathPattern::parse("/u/{id}").expect("valid");
        assert!(p.has_param("id") && !p.has_param("x"));
    }
}
