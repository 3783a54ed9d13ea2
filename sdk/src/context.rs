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
