//! Response headers asked for from the request phase, through the request context: a plugin
//! that sets the context key `response.header.<name>` gets header `<name>` with that value on
//! the response, without a response phase of its own (a call less per request).
//!
//! The chain sets them when its response phase starts, on whatever response it is given: the
//! upstream's, a plugin's reply, or the gateway's own answer to an upstream failure (which chains
//! with a 0.2.0 plugin hear). So the plugins' response phases see them and may still change or
//! remove them. Each one replaces the values already there, as `set-header` does, and passes the
//! same checks: a bad name or value, or a header past `[limits]` (count and bytes), is skipped
//! with a warning. Connection-level names (`connection`, `transfer-encoding`, ...) never reach
//! the client, and `content-length` is the body's, as for headers a plugin sets itself.

use http::HeaderMap;

use super::host_request::set_header;
use super::limits::PluginLimits;

/// The context key prefix; the rest of the key is the header's name.
const RESPONSE_HEADER_PREFIX: &str = "response.header.";

/// Set on `headers` every header `context` asks for (see the module doc).
pub(crate) fn apply(
    context: &crate::chain::Context,
    headers: &mut HeaderMap,
    limits: &PluginLimits,
) {
    for (key, value) in context {
        let Some(name) = key.strip_prefix(RESPONSE_HEADER_PREFIX) else {
            continue;
        };
        if let Err(message) = set_header(headers, limits, name, value.clone()) {
            tracing::warn!(
                context_key = %key.escape_debug(),
                "response header asked for in the request context not set: {message}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(pairs: &[(&str, &str)]) -> crate::chain::Context {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn context_keys_become_headers_and_other_keys_are_left_alone() {
        let mut headers = HeaderMap::new();
        headers.insert("x-quota-limit", http::HeaderValue::from_static("9"));
        let ctx = context(&[
            ("response.header.x-quota-limit", "3"),
            ("response.header.X-Mixed", "yes"),
            ("consumer", "alice"),
            ("response.headerx-not", "no"),
        ]);
        apply(&ctx, &mut headers, &PluginLimits::default());
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert_eq!(headers["x-quota-limit"], "3");
        assert_eq!(headers["x-mixed"], "yes");
    }

    #[test]
    fn bad_names_values_and_headers_past_the_caps_are_skipped() {
        let mut headers = HeaderMap::new();
        let ctx = context(&[
            ("response.header.", "empty name"),
            ("response.header.bad name", "v"),
            ("response.header.x-bad-value", "a\nb"),
            ("response.header.x-big", &"v".repeat(100)),
        ]);
        let limits = PluginLimits {
            max_header_bytes: 50,
            ..PluginLimits::default()
        };
        apply(&ctx, &mut headers, &limits);
        assert!(headers.is_empty(), "{headers:?}");
    }
}
