//! `api_key`: where keys are read (header and/or query parameter) and the key hashes with the
//! identity each stands for.

use std::collections::BTreeSet;

use super::identity::{check_identity, is_token};
use super::raw::RawApiKey;
use super::settings::{ApiKeySettings, Identity};
use crate::apikey;

/// `api_key`: a header or query parameter to read, and at least one key, each hash once.
pub(super) fn validate_api_key(raw: RawApiKey, e: &mut Vec<String>) -> ApiKeySettings {
    let header = if raw.header.is_empty() {
        None
    } else if is_token(&raw.header) {
        Some(raw.header.to_ascii_lowercase())
    } else {
        e.push(format!(
            "api_key.header: invalid header name {:?}",
            raw.header
        ));
        None
    };
    if let Some(q) = &raw.query
        && (q.is_empty() || q.contains(['&', '=', '#', ' ']))
    {
        e.push(format!("api_key.query: invalid parameter name {q:?}"));
    }
    if header.is_none() && raw.query.is_none() && raw.header.is_empty() {
        e.push("api_key: set `header` or `query` (or both)".into());
    }
    if raw.keys.is_empty() && !raw.control {
        e.push("api_key.keys: at least one key is needed (or `control = true`)".into());
    }
    let mut keys = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, k) in raw.keys.into_iter().enumerate() {
        let at = format!("api_key.keys[{i}]");
        check_identity(&at, &k.consumer, &k.roles, k.plan.as_deref(), e);
        match apikey::parse_hash(&k.hash) {
            Ok(hash) => {
                if !seen.insert(hash) {
                    e.push(format!("{at}.hash: the same key hash is listed twice"));
                }
                keys.push((
                    hash,
                    Identity {
                        consumer: k.consumer,
                        roles: k.roles,
                        plan: k.plan,
                    },
                ));
            }
            Err(msg) => e.push(format!("{at}.hash: {msg}")),
        }
    }
    ApiKeySettings {
        header,
        query: raw.query,
        keys,
        control: raw.control,
    }
}
