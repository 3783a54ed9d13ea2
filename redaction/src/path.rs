//! Field rules: a field name (`ssn`, any depth, any case) or a JSON path (`$.user.email`,
//! `$..card_number`, `$.items[*].iban`, `$.users[0]['e-mail']`), matched against the path of each
//! value in a JSON document. Hand-written: the subset of JSONPath (RFC 9535) that names fields
//! (child `.name` / `['name']`, descendant `..name`, wildcard `*` / `[*]`, index `[N]`); filters
//! and slices are refused at config time.

use std::borrow::Cow;

/// One step of a concrete path inside a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg<'a> {
    /// An object member.
    Key(Cow<'a, str>),
    /// An array element.
    Index(usize),
}

/// What a pattern step accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A member name.
    Name(String),
    /// An array index.
    Index(usize),
    /// Anything (`*`).
    Any,
}

impl Selector {
    fn accepts(&self, seg: &Seg<'_>) -> bool {
        match (self, seg) {
            (Selector::Any, _) => true,
            (Selector::Name(n), Seg::Key(k)) => n == k,
            (Selector::Index(i), Seg::Index(j)) => i == j,
            _ => false,
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `..`: the selector may match at this depth or any deeper one.
    descendant: bool,
    selector: Selector,
}

/// A compiled field rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// A bare field name: any member with this name (ASCII case-insensitive), at any depth.
    Name(String),
    /// A JSON path from the document root.
    Path(Vec<Step>),
}

impl Pattern {
    /// Parse a rule as written in the config.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("empty field rule".into());
        }
        if !text.starts_with('$') {
            if text.contains(['.', '[', ']', '*']) {
                return Err(format!(
                    "{text:?}: a JSON path starts with `$` (e.g. \"$.{text}\"); a bare field name has no `.`, `[`, `]` or `*`"
                ));
            }
            return Ok(Pattern::Name(text.to_ascii_lowercase()));
        }
        parse_path(text).map(Pattern::Path)
    }

    /// True when the value at `path` is selected.
    pub fn matches(&self, path: &[Seg<'_>]) -> bool {
        match self {
            Pattern::Name(name) => match path.last() {
                Some(Seg::Key(k)) => k.eq_ignore_ascii_case(name),
                _ => false,
            },
            // The last step, descendant or not, must accept the last segment: check it first.
            Pattern::Path(steps) => match (steps.last(), path.last()) {
                (Some(step), Some(seg)) => step.selector.accepts(seg) && match_steps(steps, path),
                _ => false,
            },
        }
    }

    /// True for a bare field name equal (ASCII case-insensitive) to `name`: used for query
    /// parameters in the access log.
    pub fn matches_name(&self, name: &str) -> bool {
        matches!(self, Pattern::Name(n) if n.eq_ignore_ascii_case(name))
    }
}

fn match_steps(steps: &[Step], path: &[Seg<'_>]) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return path.is_empty();
    };
    if step.descendant {
        (0..path.len())
            .any(|i| step.selector.accepts(&path[i]) && match_steps(rest, &path[i + 1..]))
    } else {
        match path.split_first() {
            Some((seg, tail)) => step.selector.accepts(seg) && match_steps(rest, tail),
            None => false,
        }
    }
}

fn parse_path(text: &str) -> Result<Vec<Step>, String> {
    let err = |why: &str| format!("JSON path {text:?}: {why}");
    let mut rest = &text[1..];
    let mut steps = Vec::new();
    while !rest.is_empty() {
        let descendant = rest.starts_with("..");
        if descendant {
            rest = &rest[2..];
        } else if rest.starts_with('.') {
            rest = &rest[1..];
        } else if !rest.starts_with('[') {
            return Err(err("expected `.`, `..` or `[` after each step"));
        }
        let selector;
        if let Some(inner) = rest.strip_prefix('[') {
            let close = find_close(inner).ok_or_else(|| err("unclosed `[`"))?;
            let body = inner[..close].trim();
            rest = &inner[close + 1..];
            selector = if body == "*" {
                Selector::Any
            } else if let Some(name) = quoted(body) {
                Selector::Name(name)
            } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
                Selector::Index(body.parse().map_err(|_| err("index too large"))?)
            } else {
                return Err(err(&format!(
                    "unsupported selector [{body}] (use ['name'], [N] or [*]; filters and slices are not supported)"
                )));
            };
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let name = &rest[..end];
            rest = &rest[end..];
            selector = match name {
                "" => return Err(err("empty name")),
                "*" => Selector::Any,
                n if n.contains([']', '\'', '"', ' ']) => {
                    return Err(err(&format!("name {n:?} needs the ['...'] form")));
                }
                n => Selector::Name(n.to_owned()),
            };
        }
        steps.push(Step {
            descendant,
            selector,
        });
    }
    if steps.is_empty() {
        return Err(err("`$` alone selects the whole document; name a field"));
    }
    Ok(steps)
}

/// The index of the `]` closing a selector, skipping over a quoted name.
fn find_close(s: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ']' => return Some(i),
            None => {}
        }
    }
    None
}

/// `'name'` or `"name"` (with `\'`, `\"` and `\\` escapes) to its text.
fn quoted(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else if c == q {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segs: &[&str]) -> Vec<Seg<'static>> {
        segs.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key(Cow::Owned((*s).to_owned())),
            })
            .collect()
    }

    fn hits(rule: &str, segs: &[&str]) -> bool {
        Pattern::parse(rule).expect("valid").matches(&path(segs))
    }

    #[test]
    fn bare_names_match_at_any_depth_in_any_case() {
        assert!(hits("ssn", &["ssn"]));
        assert!(hits("ssn", &["users", "3", "SSN"]));
        assert!(!hits("ssn", &["ssn", "x"]));
        assert!(!hits("ssn", &["ssn_last4"]));
    }

    #[test]
    fn child_paths_are_exact() {
        assert!(hits("$.user.email", &["user", "email"]));
        assert!(!hits("$.user.email", &["data", "user", "email"]));
        assert!(!hits("$.user.email", &["user"]));
        assert!(!hits("$.user.email", &["user", "Email"]));
    }

    #[test]
    fn descendants_wildcards_and_indexes() {
        assert!(hits("$..card_number", &["card_number"]));
        assert!(hits("$..card_number", &["a", "0", "b", "card_number"]));
        assert!(hits("$.items[*].iban", &["items", "7", "iban"]));
        assert!(hits("$.items.*.iban", &["items", "7", "iban"]));
        assert!(hits("$.users[0]['e-mail']", &["users", "0", "e-mail"]));
        assert!(!hits("$.users[0]['e-mail']", &["users", "1", "e-mail"]));
        assert!(hits("$..user..email", &["x", "user", "profile", "email"]));
        assert!(hits(r#"$["a.b"]"#, &["a.b"]));
    }

    #[test]
    fn bad_rules_are_explained() {
        for (rule, needle) in [
            ("", "empty"),
            ("$", "whole document"),
            ("user.email", "starts with `$`"),
            ("$.items[?(@.x)]", "unsupported selector"),
            ("$.items[1:3]", "unsupported selector"),
            ("$.a[", "unclosed"),
            ("$a", "expected `.`"),
            ("$.a..", "empty name"),
        ] {
            let err = Pattern::parse(rule).expect_err(rule);
            assert!(err.contains(needle), "{rule}: {err}");
        }
    }
}
