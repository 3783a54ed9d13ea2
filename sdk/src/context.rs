//! Per-request context: string values that one plugin sets and later plugins (and later phases
//! of the same request) read. The auth plugin sets `consumer` and `roles`, for example. The
//! gateway's access log sees it too.

use crate::__private::tollgate::plugin::context as raw;

/// The value for `key`, if set earlier in this request.
pub fn get(key: &str) -> Option<String> {
    raw::get(key)
}

/// Set `key` for the rest of this request.
pub fn set(key: &str, value: &str) {
    raw::set(key, value)
}

/// Remove `key`.
pub fn remove(key: &str) {
    raw::remove(key)
}

/// The key prefix of [`set_response_header`]: the gateway puts the header named by the rest of
/// the key on the response.
pub const RESPONSE_HEADER_PREFIX: &str = "response.header.";

/// Put header `name: value` on this request's response, from the request phase: it sets the
/// context key `response.header.<name>`, and the gateway sets the header on the response (the
/// upstream's or a plugin's reply) before the response phase. A plugin that only adds headers
/// then needs no response phase, which saves a call per request. The header replaces the values
/// already there; a bad name or value, or one past the gateway's header limits, is skipped.
pub fn set_response_header(name: &str, value: &str) {
    let mut key = String::with_capacity(RESPONSE_HEADER_PREFIX.len() + name.len());
    key.push_str(RESPONSE_HEADER_PREFIX);
    key.push_str(name);
    raw::set(&key, value)
}
