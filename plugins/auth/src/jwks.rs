//! Key sets fetched from an issuer's JWKS URL through the gateway's `fetch` (only upstreams in
//! the plugin's `fetch` setting can be reached).
//!
//! Each instance caches the parsed keys in its memory. Who fetches is decided across every
//! instance (and, with Redis, every gateway) by a shared counter with the cooldown as its TTL:
//! `state::incr("jwks-fetch:<issuer>", 1, cooldown) == 1`. The winner stores the fetched set in
//! the shared kv (`jwks:<issuer>`), where the other instances pick it up without fetching. So a
//! flood of tokens with unknown `kid`s costs at most one fetch per cooldown.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use tollgate_sdk::{fetch, log, state};

use crate::config::{Issuer, JwksUrl, JwtKey, parse_jwks};

/// Largest key set accepted, in bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// One issuer's keys as this instance knows them.
#[derive(Clone)]
struct Fetched {
    keys: Rc<Vec<JwtKey>>,
    /// When the set was fetched (by whichever instance fetched it), ms since the epoch.
    fetched_at: u64,
}

/// Per-instance cache of fetched key sets, one slot per configured issuer.
pub struct JwksCache {
    slots: RefCell<Vec<Option<Fetched>>>,
}

impl JwksCache {
    pub fn new(issuers: usize) -> Self {
        Self {
            slots: RefCell::new(vec![None; issuers]),
        }
    }

    /// The issuer's fetched keys, refreshed first when they are older than the refresh interval
    /// or lack `kid` (subject to the shared cooldown). Stale keys are kept when a refresh is
    /// not possible.
    pub fn keys(
        &self,
        index: usize,
        issuer: &Issuer,
        url: &JwksUrl,
        kid: Option<&str>,
        now_ms: u64,
    ) -> Rc<Vec<JwtKey>> {
        let current = self.slots.borrow().get(index).cloned().flatten();
        let needs = |f: &Option<Fetched>| match f {
            None => true,
            Some(f) => {
                now_ms.saturating_sub(f.fetched_at) >= url.refresh_ms
                    || kid.is_some_and(|kid| !f.keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
            }
        };
        if !needs(&current) {
            return current.map(|f| f.keys).unwrap_or_default();
        }
        // Another instance may have fetched a newer set already.
        let mut best = current;
        if let Some(shared) = read_shared(&issuer.issuer, best.as_ref().map(|b| b.fetched_at)) {
            best = Some(shared);
        }
        if needs(&best)
            && may_fetch(&issuer.issuer, url.cooldown_ms)
            && let Some(fresh) = fetch_keys(&issuer.issuer, url, now_ms)
        {
            best = Some(fresh);
        }
        if let Some(slot) = self.slots.borrow_mut().get_mut(index) {
            slot.clone_from(&best);
        }
        best.map(|f| f.keys).unwrap_or_default()
    }
}

fn shared_key(issuer: &str) -> String {
    format!("jwks:{issuer}")
}

/// The shared copy, `{"fetched_at": ms, "jwks": <document>}`, when it is newer than `than`.
fn read_shared(issuer: &str, than: Option<u64>) -> Option<Fetched> {
    let text = match state::get(&shared_key(issuer)) {
        Ok(text) => text?,
        Err(e) => {
            log::warn(&format!("auth: reading the shared key set failed: {e}"));
            return None;
        }
    };
    let doc: Value = serde_json::from_str(&text).ok()?;
    let fetched_at = doc.get("fetched_at")?.as_u64()?;
    if than.is_some_and(|than| fetched_at <= than) {
        return None;
    }
    let (keys, _) = parse_jwks(doc.get("jwks")?, false).ok()?;
    Some(Fetched {
        keys: Rc::new(keys),
        fetched_at,
    })
}

/// Whether this instance wins the right to fetch in the current cooldown window.
fn may_fetch(issuer: &str, cooldown_ms: u64) -> bool {
    match state::incr(&format!("jwks-fetch:{issuer}"), 1, cooldown_ms) {
        Ok(n) => n == 1,
        Err(e) => {
            // Without the shared gate we cannot bound fetches: do not fetch.
            log::warn(&format!("auth: key set fetch gate unavailable: {e}"));
            false
        }
    }
}

fn fetch_keys(issuer: &str, url: &JwksUrl, now_ms: u64) -> Option<Fetched> {
    let mut request = fetch::get(&url.upstream, &url.path);
    request
        .headers
        .push(("accept".into(), "application/json".into()));
    request.timeout_ms = url.timeout_ms;
    let response = match fetch::fetch(&[request]).into_iter().next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            log::warn(&format!(
                "auth: fetching the key set of {issuer:?} failed: {e}"
            ));
            return None;
        }
        None => return None,
    };
    if response.status != 200 || response.body.len() > MAX_JWKS_BYTES {
        log::warn(&format!(
            "auth: key set of {issuer:?}: status {}, {} bytes",
            response.status,
            response.body.len()
        ));
        return None;
    }
    let doc: Value = match serde_json::from_slice(&response.body) {
        Ok(doc) => doc,
        Err(e) => {
            log::warn(&format!("auth: key set of {issuer:?} is not JSON: {e}"));
            return None;
        }
    };
    let (keys, skipped) = match parse_jwks(&doc, false) {
        Ok(parsed) => parsed,
        Err(e) => {
            log::warn(&format!("auth: key set of {issuer:?}: {e}"));
            return None;
        }
    };
    for msg in skipped {
        log::info(&format!("auth: key set of {issuer:?}: skipped {msg}"));
    }
    let shared = serde_json::json!({ "fetched_at": now_ms, "jwks": doc }).to_string();
    // Keep the shared copy a while past the refresh so instances that start late find it.
    let ttl = url.refresh_ms.saturating_mul(4);
    if let Err(e) = state::set(&shared_key(issuer), &shared, ttl) {
        log::warn(&format!("auth: storing the shared key set failed: {e}"));
    }
    Some(Fetched {
        keys: Rc::new(keys),
        fetched_at: now_ms,
    })
}
