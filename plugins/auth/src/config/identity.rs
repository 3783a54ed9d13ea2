//! Checks shared by every method: the consumer, roles and plan a credential stands for, and
//! header names.

use super::raw::RawIdentity;
use super::settings::Identity;

/// The identity of `anonymous`, checked.
pub(super) fn identity(at: &str, raw: RawIdentity, e: &mut Vec<String>) -> Identity {
    check_identity(at, &raw.consumer, &raw.roles, raw.plan.as_deref(), e);
    Identity {
        consumer: raw.consumer,
        roles: raw.roles,
        plan: raw.plan,
    }
}

/// Consumer, roles and plan end up in context values (roles comma-joined), so they must be
/// non-empty, free of control characters, and roles free of commas.
pub(super) fn check_identity(
    at: &str,
    consumer: &str,
    roles: &[String],
    plan: Option<&str>,
    e: &mut Vec<String>,
) {
    let bad = |s: &str| s.is_empty() || s.chars().any(char::is_control);
    if bad(consumer) {
        e.push(format!(
            "{at}.consumer: must be non-empty, without control characters"
        ));
    }
    for role in roles {
        if bad(role) || role.contains(',') || role.trim() != role {
            e.push(format!(
                "{at}.roles: invalid role {role:?} (empty, commas, spaces around or control characters)"
            ));
        }
    }
    if plan.is_some_and(bad) {
        e.push(format!(
            "{at}.plan: must be non-empty, without control characters"
        ));
    }
}

/// An HTTP token (RFC 9110): what a header name must be.
pub(super) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
