//! The few query-string operations the API-key method needs: read a parameter's values and
//! remove the parameter, leaving every other pair byte-for-byte as it was.

/// Percent-decode one query component (`+` is a space, as in forms). `None` when an escape is
/// malformed or the result is not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn name_of(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(name, _)| name)
}

/// Every value of parameter `name` (decoded). A pair whose name matches but whose value cannot
/// be decoded yields an empty string, which matches no key.
pub fn values(query: &str, name: &str) -> Vec<String> {
    query
        .split('&')
        .filter(|pair| decode(name_of(pair)).as_deref() == Some(name))
        .map(|pair| {
            pair.split_once('=')
                .and_then(|(_, v)| decode(v))
                .unwrap_or_default()
        })
        .collect()
}

/// The query without parameter `name`.
pub fn without(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| decode(name_of(pair)).as_deref() != Some(name))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_removes() {
        assert_eq!(values("a=1&api_key=k%2By+z&b=2", "api_key"), vec!["k+y z"]);
        assert_eq!(values("api%5Fkey=x", "api_key"), vec!["x"]);
        assert_eq!(values("a=1", "api_key"), Vec::<String>::new());
        assert_eq!(values("api_key=1&api_key=2", "api_key").len(), 2);
        assert_eq!(values("api_key=%zz", "api_key"), vec![""]);
        assert_eq!(without("a=1&api_key=k&b=%20", "api_key"), "a=1&b=%20");
        assert_eq!(without("api_key=k", "api_key"), "");
        assert_eq!(without("a=1", "api_key"), "a=1");
    }
}
