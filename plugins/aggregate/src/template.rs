//! Templates that fill a backend request's path, query values and header values from the
//! incoming request: `{path.NAME}`, `{query.NAME}`, `{header.NAME}`, `{context.KEY}` and
//! `{consumer}` (short for `{context.consumer}`), each with an optional default after `|`
//! (`{query.limit|20}`).
//!
//! A template never chooses where a request goes: the upstream is fixed by name in the config,
//! and a value is always encoded for the place it lands in (a path segment, a query component or
//! a header value), so `/`, `?`, `#`, `&` or a line break in a value cannot add segments,
//! parameters or headers. Plain Rust, unit-tested natively.

use std::fmt;

/// Where a placeholder's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A parameter of the plugin's `path` pattern (`/users/{id}`), percent-decoded.
    Path(String),
    /// The first value of a query parameter of the incoming request, decoded (`+` is a space).
    Query(String),
    /// The first value of a request header (name lower case).
    Header(String),
    /// A per-request context value set by an earlier plugin (`consumer` by the auth plugin).
    Context(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Path(n) => write!(f, "path parameter `{n}`"),
            Source::Query(n) => write!(f, "query parameter `{n}`"),
            Source::Header(n) => write!(f, "header `{n}`"),
            Source::Context(k) if k == "consumer" => {
                write!(
                    f,
                    "consumer (no plugin before this one identified the caller)"
                )
            }
            Source::Context(k) => write!(f, "context value `{k}`"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value {
        source: Source,
        default: Option<String>,
    },
}

/// Where a rendered template goes, which decides how values are encoded and which are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The request path: a value becomes (part of) one segment; it is percent-encoded, and an
    /// empty value, `.`, `..` or one holding `/` or `\` is refused.
    Path,
    /// A query parameter's value: percent-encoded.
    Query,
    /// A header value: kept as is; control characters are refused.
    Header,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template could not be filled for this request (answered 400 to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The value is absent and the placeholder has no default.
    Missing(Source),
    /// The value cannot go where the template puts it.
    Unusable(Source, &'static str),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Missing(source) => write!(f, "missing {source}"),
            RenderError::Unusable(source, why) => write!(f, "{source} {why}"),
        }
    }
}

/// Looks up placeholder values for one request.
pub trait Values {
    /// The value, if the request has it.
    fn get(&mut self, source: &Source) -> Option<String>;
}

impl Template {
    /// Parse `text`. `{` starts a placeholder and `}` ends it; braces cannot appear otherwise.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Literal(rest.to_owned()));
                    break;
                }
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err(format!("`}}` without `{{` in template {text:?}"));
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Literal(rest[..i].to_owned()));
                    }
                    let inner = &rest[i + 1..];
                    let end = inner
                        .find(['{', '}'])
                        .filter(|&j| inner.as_bytes()[j] == b'}')
                        .ok_or_else(|| format!("unclosed `{{` in template {text:?}"))?;
                    parts.push(placeholder(&inner[..end], text)?);
                    rest = &inner[end + 1..];
                }
            }
        }
        Ok(Template { parts })
    }

    /// The sources this template reads.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.parts.iter().filter_map(|p| match p {
            Part::Value { source, .. } => Some(source),
            Part::Literal(_) => None,
        })
    }

    /// The literal text before the first placeholder (the whole text when there is none).
    pub fn literal_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Literal(l)) => l,
            _ => "",
        }
    }

    /// The literal parts.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Literal(l) => Some(l.as_str()),
            Part::Value { .. } => None,
        })
    }

    /// Fill the template for `place`. Literals are copied as written (validated at init).
    pub fn render(&self, values: &mut dyn Values, place: Place) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Value { source, default } => {
                    let value = match values.get(source) {
                        Some(v) => v,
                        None => default
                            .clone()
                            .ok_or_else(|| RenderError::Missing(source.clone()))?,
                    };
                    encode_into(&mut out, &value, place)
                        .map_err(|why| RenderError::Unusable(source.clone(), why))?;
                }
            }
        }
        Ok(out)
    }
}

fn placeholder(inner: &str, text: &str) -> Result<Part, String> {
    let (name, default) = match inner.split_once('|') {
        Some((name, default)) => (name, Some(default.to_owned())),
        None => (inner, None),
    };
    let name = name.trim();
    let source = match name.split_once('.') {
        None if name == "consumer" => Source::Context("consumer".to_owned()),
        Some(("path", n)) if is_identifier(n) => Source::Path(n.to_owned()),
        Some(("query", n)) if !n.is_empty() => Source::Query(n.to_owned()),
        Some(("header", n)) if is_token(n) => Source::Header(n.to_ascii_lowercase()),
        Some(("context", k)) if !k.is_empty() => Source::Context(k.to_owned()),
        _ => {
            return Err(format!(
                "`{{{inner}}}` in template {text:?} is not one of {{path.NAME}}, {{query.NAME}}, \
                 {{header.NAME}}, {{context.KEY}}, {{consumer}} (with an optional `|default`)"
            ));
        }
    };
    Ok(Part::Value { source, default })
}

/// Letters, digits and `_`: the names of path pattern parameters.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An RFC 9110 token (header names, methods).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// Characters a path template's literal text may hold as written (RFC 3986 `pchar` and `/`),
/// besides `%XX` escapes.
pub fn is_path_char(b: u8) -> bool {
    is_unreserved(b) || b"!$&'()*+,;=:@/".contains(&b)
}

fn encode_into(out: &mut String, value: &str, place: Place) -> Result<(), &'static str> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("contains control characters");
    }
    match place {
        Place::Header => {
            out.push_str(value);
            return Ok(());
        }
        Place::Path if value.is_empty() => return Err("is empty and cannot fill a path segment"),
        Place::Path if value == "." || value == ".." => {
            return Err("is a dot-segment and cannot fill a path segment");
        }
        Place::Path if value.contains(['/', '\\']) => {
            return Err("contains `/` or `\\` and cannot fill a path segment");
        }
        Place::Path | Place::Query => {}
    }
    percent_encode_into(out, value);
    Ok(())
}

/// Percent-encode every byte of `value` except unreserved characters.
pub fn percent_encode_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// Decode `%XX` escapes (and `+` as a space when `plus_is_space`); malformed escapes are kept
/// as written; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |j: usize| bytes.get(j).and_then(|&c| char::from(c).to_digit(16));
        match b {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                _ => out.push(b),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of each parameter of a raw query string, decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true) == name).then(|| percent_decode(v, true))
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<String, String>);

    impl Values for Map {
        fn get(&mut self, source: &Source) -> Option<String> {
            let key = match source {
                Source::Path(n) => format!("path.{n}"),
                Source::Query(n) => format!("query.{n}"),
                Source::Header(n) => format!("header.{n}"),
                Source::Context(k) => format!("context.{k}"),
            };
            self.0.get(&key).cloned()
        }
    }

    fn values(pairs: &[(&str, &str)]) -> Map {
        Map(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    fn render(t: &str, pairs: &[(&str, &str)], place: Place) -> Result<String, RenderError> {
        Template::parse(t)
            .expect("valid template")
            .render(&mut values(pairs), place)
    }

    #[test]
    fn placeholders_are_parsed() {
        let t = Template::parse("/u/{path.id}/x{query.q|d}{consumer}{header.X-A}{context.plan}")
            .expect("valid");
        let sources: Vec<_> = t.sources().cloned().collect();
        assert_eq!(
            sources,
            [
                Source::Path("id".into()),
                Source::Query("q".into()),
                Source::Context("consumer".into()),
                Source::Header("x-a".into()),
                Source::Context("plan".into()),
            ]
        );
        assert_eq!(t.literal_prefix(), "/u/");
        assert_eq!(t.literals().collect::<Vec<_>>(), ["/u/", "/x"]);
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "/a/{path.id",
            "/a/path.id}",
            "/a/{nope}",
            "/a/{path.}",
            "/a/{path.a-b}",
            "/a/{query.}",
            "/a/{header.bad name}",
            "/a/{{path.id}}",
            "/a/{}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn values_are_encoded_for_their_place() {
        let pairs = [("path.id", "a b/é"), ("query.q", "x&y=z#?")];
        assert_eq!(
            render("/s?{query.q}", &pairs, Place::Query).expect("renders"),
            "/s?x%26y%3Dz%23%3F"
        );
        assert_eq!(
            render("{query.q}", &pairs, Place::Header).expect("renders"),
            "x&y=z#?"
        );
        assert_eq!(
            render("/u/{path.x}", &[("path.x", "a b:é")], Place::Path).expect("renders"),
            "/u/a%20b%3A%C3%A9"
        );
    }

    #[test]
    fn values_that_would_change_the_path_shape_are_refused() {
        for value in ["", ".", "..", "a/b", "..\\x", "a\nb"] {
            let err = render("/u/{path.x}", &[("path.x", value)], Place::Path)
                .expect_err("must be refused");
            assert!(
                matches!(err, RenderError::Unusable(Source::Path(_), _)),
                "{value:?}: {err:?}"
            );
        }
        let err = render("{header.x}", &[("header.x", "a\r\nb: c")], Place::Header)
            .expect_err("must be refused");
        assert_eq!(err.to_string(), "header `x` contains control characters");
    }

    #[test]
    fn missing_values_use_the_default_or_fail() {
        assert_eq!(
            render("/l/{query.limit|20}", &[], Place::Path).expect("default"),
            "/l/20"
        );
        assert_eq!(
            render("/l/{query.limit|20}", &[("query.limit", "5")], Place::Path).expect("value"),
            "/l/5"
        );
        let err = render("/c/{consumer}", &[], Place::Path).expect_err("missing");
        assert_eq!(
            err,
            RenderError::Missing(Source::Context("consumer".into()))
        );
        assert!(err.to_string().starts_with("missing consumer"));
        assert_eq!(
            render("{query.f|}", &[], Place::Query).expect("empty default"),
            ""
        );
    }

    #[test]
    fn query_parameters_are_decoded() {
        let q = "a=1&b=x+y%21&a=2&empty&c=%zz";
        assert_eq!(query_param(q, "a").as_deref(), Some("1"));
        assert_eq!(query_param(q, "b").as_deref(), Some("x y!"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "c").as_deref(), Some("%zz"));
        assert_eq!(query_param(q, "d"), None);
        assert_eq!(percent_decode("a%2Fb+c", false), "a/b+c");
    }
}
