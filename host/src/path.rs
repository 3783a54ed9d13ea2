//! The one path rule. Routing, plugins and the upstream all see the path this returns, so a path
//! that two parsers could read differently is either rewritten to one canonical form or refused.
//!
//! Refused (400): a path not starting with `/`; a malformed escape; encoded `/` or `\`; a raw `\`;
//! control characters raw or encoded (including `%00`); a raw `#`; double encoding (`%25` followed
//! by two hex digits); `..` above the root; a dot-segment carrying `;` parameters (`..;`), which
//! some servers read as `..`.
//!
//! Rewritten: escapes of unreserved characters are decoded (`/%61dmin` → `/admin`); other escapes
//! are upper-cased; raw non-ASCII bytes are escaped; `.` and `..` segments are resolved (also when
//! encoded, `%2e`); empty segments are dropped (`//admin` → `/admin`). A trailing slash and the
//! case of every character are kept.
//!
//! Routing reads the normalised path once more through [`without_params`], the way Tomcat,
//! Jetty and Spring (and the `rbac` plugin) read it: `;` parameters cut from every segment.

use thiserror::Error;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path does not start with `/` (e.g. `*` or an empty path).
    #[error("the path must start with `/`")]
    NotAbsolute,
    /// `%` not followed by two hex digits.
    #[error("malformed percent-escape at byte {0}")]
    MalformedEscape(usize),
    /// `%2F`: an encoded slash would hide a segment boundary from routing.
    #[error("encoded `/` (%2F) is not allowed in the path")]
    EncodedSlash,
    /// A backslash, raw or encoded (`%5C`): some servers treat it as `/`.
    #[error("backslash (raw or %5C) is not allowed in the path")]
    Backslash,
    /// A control character, raw or encoded (including `%00`).
    #[error("control characters (raw or encoded) are not allowed in the path")]
    ControlChar,
    /// A raw `#`: fragments are never sent to a server.
    #[error("a fragment (`#`) is not allowed in the path")]
    Fragment,
    /// `%25` followed by two hex digits: a second decoding would change the path.
    #[error("double percent-encoding is not allowed in the path")]
    DoubleEncoding,
    /// A `..` segment that would climb above `/`.
    #[error("`..` climbs above the root")]
    AboveRoot,
    /// A dot-segment with `;` parameters (`..;`), read as `..` by some servers.
    #[error("a dot-segment with `;` parameters is not allowed in the path")]
    DotSegmentParams,
}

/// Normalise a request path (without the query) by the one rule described in the module docs.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    if is_normalized(raw) {
        return Ok(raw.to_owned());
    }
    normalize_changed(raw)
}

/// True when [`normalize_path`] would return `raw` unchanged: it starts with `/`, holds only
/// printable ASCII other than `%`, `\` and `#`, and has no dot-segment (with or without `;`
/// parameters) and no empty segment but a trailing one. Most paths are like this, and one scan
/// without allocating says so.
pub fn is_normalized(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix('/') else {
        return false;
    };
    let printable = |b: u8| (0x20..0x7f).contains(&b) && !matches!(b, b'%' | b'\\' | b'#');
    if !raw.bytes().all(printable) {
        return false;
    }
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let dot = matches!(segment, "." | "..") || segment.starts_with(".;");
        let dot = dot || segment.starts_with("..;");
        if dot || (segment.is_empty() && segments.peek().is_some()) {
            return false;
        }
    }
    true
}

/// The full rule, for a path that [`is_normalized`] did not pass.
fn normalize_changed(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }

    // Pass 1: check and decode escapes. `/` in the output only ever comes from a raw `/`, because
    // an encoded one is refused, so pass 2 can split on it safely.
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let value = hex_pair(bytes, i + 1).ok_or(PathError::MalformedEscape(i))?;
                match value {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::Backslash),
                    v if v < 0x20 || v == 0x7f => return Err(PathError::ControlChar),
                    v if is_unreserved(v) => decoded.push(char::from(v)),
                    v => push_escape(&mut decoded, v),
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b'#' => return Err(PathError::Fragment),
            b if b < 0x20 || b == 0x7f => return Err(PathError::ControlChar),
            b if b >= 0x80 => {
                push_escape(&mut decoded, b);
                i += 1;
            }
            b => {
                decoded.push(char::from(b));
                i += 1;
            }
        }
    }

    // Checked on the decoded text so `%25%32%65` (which decodes to `%252e`) is caught too.
    if has_double_encoding(&decoded) {
        return Err(PathError::DoubleEncoding);
    }

    // Pass 2: resolve dot-segments and drop empty ones.
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded[1..].split('/') {
        trailing_slash = false;
        match segment {
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
                trailing_slash = true;
            }
            s if is_dot_with_params(s) => return Err(PathError::DotSegmentParams),
            s => segments.push(s),
        }
    }

    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if segments.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// The normalised `path` with `;` parameters (raw, or escaped as `%3B`) cut from every segment
/// and the segments they leave empty dropped: `/admin;x/a` and `/admin%3Bx/a` read as `/admin/a`,
/// `/;x/admin` as `/admin`. A trailing slash, or a last segment that was only parameters, reads
/// as a trailing slash. Paths without parameters are returned as they are.
pub fn without_params(path: &str) -> std::borrow::Cow<'_, str> {
    let cut = |segment: &str| -> usize {
        let upper = segment.find(';').unwrap_or(segment.len());
        let escaped = segment
            .match_indices('%')
            .find(|(at, _)| matches!(segment.get(at + 1..at + 3), Some("3B" | "3b")))
            .map_or(segment.len(), |(at, _)| at);
        upper.min(escaped)
    };
    let has_params = path.contains(';') || path.contains("%3B") || path.contains("%3b");
    if !has_params {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut trailing = false;
    for segment in path.split('/').skip(1) {
        let kept = &segment[..cut(segment)];
        trailing = kept.is_empty();
        if !kept.is_empty() {
            out.push('/');
            out.push_str(kept);
        }
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    std::borrow::Cow::Owned(out)
}

fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let hi = hex_digit(*bytes.get(at)?)?;
    let lo = hex_digit(*bytes.get(at + 1)?)?;
    Some(hi << 4 | lo)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn has_double_encoding(decoded: &str) -> bool {
    decoded
        .match_indices("%25")
        .any(|(at, _)| hex_pair(decoded.as_bytes(), at + 3).is_some())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

fn is_dot_with_params(segment: &str) -> bool {
    matches!(segment.split(';').next(), Some("." | "..")) && segment.contains(';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        match normalize_path(raw) {
            Ok(p) => p,
            Err(e) => panic!("{raw:?} was refused: {e}"),
        }
    }

    fn err(raw: &str) -> PathError {
        match normalize_path(raw) {
            Ok(p) => panic!("{raw:?} was accepted as {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/admin",
            "/admin/",
            "/a/b/c",
            "/Admin/CASE",
            "/a;b=c",
            "/a:b@c!$&'()*+,=",
        ] {
            assert_eq!(ok(p), p);
        }
    }

    #[test]
    fn duplicate_slashes_collapse() {
        assert_eq!(ok("//admin"), "/admin");
        assert_eq!(ok("/a//b///c"), "/a/b/c");
        assert_eq!(ok("//"), "/");
        assert_eq!(ok("/a//"), "/a/");
    }

    #[test]
    fn trailing_slash_is_kept() {
        assert_eq!(ok("/admin/"), "/admin/");
        assert_eq!(ok("/admin"), "/admin");
    }

    #[test]
    fn unreserved_escapes_are_decoded() {
        assert_eq!(ok("/%61dmin"), "/admin");
        assert_eq!(ok("/%41%2d%2E%5f%7E"), "/A-._~");
    }

    #[test]
    fn other_escapes_are_kept_upper_case() {
        assert_eq!(ok("/a%3fb"), "/a%3Fb");
        assert_eq!(ok("/a%20b"), "/a%20b");
        assert_eq!(ok("/%e2%82%ac"), "/%E2%82%AC");
        assert_eq!(ok("/a%23b"), "/a%23b");
        assert_eq!(ok("/100%25"), "/100%25");
    }

    #[test]
    fn raw_non_ascii_is_escaped() {
        assert_eq!(ok("/€"), "/%E2%82%AC");
    }

    #[test]
    fn dot_segments_are_resolved() {
        assert_eq!(ok("/api/../admin"), "/admin");
        assert_eq!(ok("/a/./b"), "/a/b");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/b/."), "/a/b/");
        assert_eq!(ok("/."), "/");
        assert_eq!(ok("/a/%2e%2e/x"), "/x");
        assert_eq!(ok("/a/.%2E/x"), "/x");
        assert_eq!(ok("/a/..x/.b"), "/a/..x/.b");
    }

    #[test]
    fn climbing_above_root_is_refused() {
        assert_eq!(err("/%2e%2e/x"), PathError::AboveRoot);
        assert_eq!(err("/.."), PathError::AboveRoot);
        assert_eq!(err("/a/../../x"), PathError::AboveRoot);
    }

    #[test]
    fn encoded_separators_are_refused() {
        assert_eq!(err("/a%2fb"), PathError::EncodedSlash);
        assert_eq!(err("/a%2Fb"), PathError::EncodedSlash);
        assert_eq!(err("/a%5cb"), PathError::Backslash);
        assert_eq!(err("/a\\b"), PathError::Backslash);
    }

    #[test]
    fn malformed_escapes_are_refused() {
        assert_eq!(err("/%zz"), PathError::MalformedEscape(1));
        assert_eq!(err("/a%"), PathError::MalformedEscape(2));
        assert_eq!(err("/a%4"), PathError::MalformedEscape(2));
    }

    #[test]
    fn double_encoding_is_refused() {
        assert_eq!(err("/%252e"), PathError::DoubleEncoding);
        assert_eq!(err("/%252F"), PathError::DoubleEncoding);
        assert_eq!(err("/%25%32%65"), PathError::DoubleEncoding);
    }

    #[test]
    fn control_characters_and_fragments_are_refused() {
        assert_eq!(err("/a%00b"), PathError::ControlChar);
        assert_eq!(err("/a%0d%0a"), PathError::ControlChar);
        assert_eq!(err("/a%7f"), PathError::ControlChar);
        assert_eq!(err("/a\tb"), PathError::ControlChar);
        assert_eq!(err("/a#b"), PathError::Fragment);
    }

    #[test]
    fn relative_and_empty_paths_are_refused() {
        assert_eq!(err(""), PathError::NotAbsolute);
        assert_eq!(err("*"), PathError::NotAbsolute);
        assert_eq!(err("admin"), PathError::NotAbsolute);
    }

    #[test]
    fn dot_segments_with_parameters_are_refused() {
        assert_eq!(err("/api/..;/admin"), PathError::DotSegmentParams);
        assert_eq!(err("/api/.;x/admin"), PathError::DotSegmentParams);
        assert_eq!(ok("/api/..x;/admin"), "/api/..x;/admin");
    }

    #[test]
    fn parameters_are_cut_for_routing() {
        for (path, read) in [
            ("/admin", "/admin"),
            ("/admin;x", "/admin"),
            ("/admin;x=1;y/users", "/admin/users"),
            ("/admin%3Bx", "/admin"),
            ("/admin%3bx/a", "/admin/a"),
            ("/;x/admin", "/admin"),
            ("/admin/;x", "/admin/"),
            ("/admin/", "/admin/"),
            ("/;", "/"),
            ("/a%3Cb", "/a%3Cb"),
        ] {
            assert_eq!(without_params(path), read, "{path}");
        }
    }

    #[test]
    fn normalising_is_idempotent() {
        for p in [
            "//a/./b/../c/",
            "/%61%2e%2E/x/%e2%82%ac",
            "/a%20b//",
            "/x/y/..",
        ] {
            let once = ok(p);
            assert_eq!(ok(&once), once, "for {p:?}");
        }
    }

    /// Every path of up to five characters over an alphabet of the characters the rule cares
    /// about: the quick check passes a path only when the full rule returns it unchanged, and
    /// passes every such path without an escape (`/%22` stays as it is, and takes the full rule).
    #[test]
    fn the_quick_check_agrees_with_the_full_rule() {
        const ALPHABET: [char; 12] = [
            '/', '.', ';', 'a', '%', '2', 'e', '\\', '#', ' ', '\u{7f}', 'é',
        ];
        let mut paths = vec![String::new()];
        let mut checked = 0;
        for _ in 0..5 {
            let mut longer = Vec::with_capacity(paths.len() * ALPHABET.len());
            for path in &paths {
                for c in ALPHABET {
                    let mut p = path.clone();
                    p.push(c);
                    longer.push(p);
                }
            }
            for path in &longer {
                let full = normalize_changed(path);
                let unchanged = full.as_deref() == Ok(path.as_str());
                let quick = is_normalized(path);
                assert!(
                    !quick || unchanged,
                    "{path:?} passed, but the rule gives {full:?}"
                );
                assert!(
                    quick || !unchanged || path.contains('%'),
                    "{path:?} took the full rule"
                );
                checked += 1;
            }
            paths = longer;
        }
        assert_eq!(checked, 12 + 144 + 1_728 + 20_736 + 248_832);
        assert!(is_normalized("/api/v1/users/42;v=1"));
    }
}
