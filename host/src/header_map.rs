//! Checks on a header map that both the proxy and telemetry make, kept below both so neither
//! imports the other for them.

use http::{HeaderMap, HeaderName};

/// True when `name` has exactly one value and it is `value`: setting it again would change
/// nothing (and would cost a copy of the value).
pub fn is_only_value(headers: &HeaderMap, name: &HeaderName, value: &[u8]) -> bool {
    let mut values = headers.get_all(name).iter();
    values.next().is_some_and(|v| v.as_bytes() == value) && values.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_one_value_equal_to_the_given_one_counts() {
        let name = HeaderName::from_static("x-id");
        let mut headers = HeaderMap::new();
        assert!(!is_only_value(&headers, &name, b"a"));
        headers.insert(name.clone(), HeaderValue::from_static("a"));
        assert!(is_only_value(&headers, &name, b"a"));
        assert!(!is_only_value(&headers, &name, b"b"));
        headers.append(name.clone(), HeaderValue::from_static("a"));
        assert!(!is_only_value(&headers, &name, b"a"));
    }
}
