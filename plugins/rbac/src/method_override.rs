//! Method override: `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` headers and
//! the `_method` query parameter, which frameworks (Rails, Laravel, Express `method-override`)
//! read to run another method than the one on the request line.
//!
//! The rule: whatever rbac decides on is the method the upstream runs. So the override headers
//! and `_method` are always removed before the request goes on; when overrides are honoured
//! (`allow_method_override = true`, POST requests only) the override becomes the request's real
//! method. Plain Rust with no host calls: unit-tested natively.

/// The override headers, lower case.
pub const HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The query parameter.
const PARAM: &str = "_method";

/// The method to decide on: the override when `enabled`, the real method is POST and an
/// override is present; the real method otherwise. `values` are every override value found
/// (headers and `_method`). Several different values, or one that is not a method token, are an
/// error when the override would be honoured.
pub fn resolve(real: &str, enabled: bool, values: &[String]) -> Result<String, String> {
    let real = real.to_ascii_uppercase();
    if !enabled || real != "POST" || values.is_empty() {
        return Ok(real);
    }
    let mut chosen: Option<String> = None;
    for value in values {
        let value = value.trim();
        if !is_token(value) {
            return Err(format!("method override {value:?} is not an HTTP method"));
        }
        let value = value.to_ascii_uppercase();
        match &chosen {
            Some(c) if *c != value => {
                return Err("conflicting method override values".into());
            }
            _ => chosen = Some(value),
        }
    }
    Ok(chosen.unwrap_or(real))
}

/// The decoded values of every `_method` parameter in a raw query string. Keys are compared
/// after percent-decoding and `+` → space, as the frameworks do (`%5Fmethod` is `_method`).
pub fn query_values(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_form(key) == PARAM).then(|| decode_form(value))
        })
        .collect()
}

/// The query without its `_method` parameters: `None` when there were none (nothing to
/// change), `Some(None)` when nothing is left, `Some(Some(q))` otherwise.
pub fn strip_query(query: &str) -> Option<Option<String>> {
    let pairs: Vec<&str> = query.split('&').collect();
    let kept: Vec<&str> = pairs
        .iter()
        .copied()
        .filter(|pair| decode_form(pair.split_once('=').map_or(*pair, |(k, _)| k)) != PARAM)
        .collect();
    if kept.len() == pairs.len() {
        return None;
    }
    let kept: Vec<&str> = kept.into_iter().filter(|p| !p.is_empty()).collect();
    Some((!kept.is_empty()).then(|| kept.join("&")))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `application/x-www-form-urlencoded` decoding of one key or value; malformed escapes are kept
/// as written.
fn decode_form(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ignored_unless_enabled_and_post() {
        assert_eq!(resolve("POST", false, &v(&["DELETE"])), Ok("POST".into()));
        assert_eq!(resolve("GET", true, &v(&["DELETE"])), Ok("GET".into()));
        assert_eq!(resolve("get", false, &[]), Ok("GET".into()));
        // Garbage is not even looked at when the override is ignored.
        assert_eq!(
            resolve("POST", false, &v(&["not a method"])),
            Ok("POST".into())
        );
    }

    #[test]
    fn honoured_when_enabled_on_post() {
        assert_eq!(resolve("POST", true, &v(&["delete"])), Ok("DELETE".into()));
        assert_eq!(
            resolve("POST", true, &v(&["PUT", " put "])),
            Ok("PUT".into())
        );
        assert_eq!(resolve("POST", true, &[]), Ok("POST".into()));
        assert!(resolve("POST", true, &v(&["PUT", "DELETE"])).is_err());
        assert!(resolve("POST", true, &v(&[""])).is_err());
        assert!(resolve("POST", true, &v(&["DE LETE"])).is_err());
    }

    #[test]
    fn query_parameter() {
        assert_eq!(query_values("a=1&_method=DELETE"), v(&["DELETE"]));
        assert_eq!(query_values("%5Fmethod=put&_method"), v(&["put", ""]));
        assert_eq!(query_values("_methods=x&method=y"), Vec::<String>::new());
        assert_eq!(
            strip_query("a=1&_method=DELETE&b=2"),
            Some(Some("a=1&b=2".into()))
        );
        assert_eq!(strip_query("_method=DELETE"), Some(None));
        assert_eq!(strip_query("%5fmethod=x&a"), Some(Some("a".into())));
        assert_eq!(strip_query("a=1&b=_method"), None);
    }
}
