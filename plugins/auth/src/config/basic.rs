//! `basic`: HTTP Basic users with their bcrypt hashes, and how long a successful check is
//! remembered.

use std::collections::BTreeSet;

use super::identity::check_identity;
use super::raw::RawBasic;
use super::settings::{BasicSettings, Identity, User};

/// `basic`: at least one user, each name once and usable in a Basic credential.
pub(super) fn validate_basic(raw: RawBasic, e: &mut Vec<String>) -> BasicSettings {
    if raw.users.is_empty() {
        e.push("basic.users: at least one user is needed".into());
    }
    let mut names = BTreeSet::new();
    let users = raw
        .users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = format!("basic.users[{i}]");
            if u.username.is_empty()
                || u.username.contains(':')
                || u.username.chars().any(char::is_control)
            {
                e.push(format!(
                    "{at}.username: must be non-empty, without `:` or control characters"
                ));
            }
            if !names.insert(u.username.clone()) {
                e.push(format!("{at}.username: {:?} is listed twice", u.username));
            }
            if let Err(msg) = crate::basic::check_hash(&u.password_hash) {
                e.push(format!("{at}.password_hash: {msg}"));
            }
            let consumer = u.consumer.unwrap_or_else(|| u.username.clone());
            check_identity(&at, &consumer, &u.roles, u.plan.as_deref(), e);
            User {
                username: u.username,
                password_hash: u.password_hash,
                identity: Identity {
                    consumer,
                    roles: u.roles,
                    plan: u.plan,
                },
            }
        })
        .collect();
    BasicSettings {
        users,
        cache_ttl_ms: raw.cache_ttl_s.saturating_mul(1000),
    }
}
