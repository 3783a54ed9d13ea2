//! HTTP Basic authentication against bcrypt password hashes, with a short per-instance cache of
//! successful checks so a busy client does not pay for bcrypt on every request.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::config::{BasicSettings, User};

/// Largest bcrypt cost accepted in config: each step doubles the CPU time per check, and the
/// check runs inside the plugin's CPU deadline.
pub const MAX_COST: u32 = 12;
/// Entries kept by one instance's cache before it is cleared.
const CACHE_CAPACITY: usize = 1024;

/// Validate a configured bcrypt hash.
pub fn check_hash(hash: &str) -> Result<(), String> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|_| {
        "expected a bcrypt hash ($2a$/$2b$/$2y$, as `htpasswd -nbB user pass` prints)".to_string()
    })?;
    if parts.get_cost() > MAX_COST {
        return Err(format!(
            "bcrypt cost {} is above {MAX_COST}: every uncached check would take too long",
            parts.get_cost()
        ));
    }
    Ok(())
}

/// `user:password` from an `Authorization: Basic ...` value (the scheme already removed).
pub fn decode_credentials(encoded: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Checks passwords and remembers successes for `cache_ttl_ms`.
pub struct BasicAuth {
    settings: BasicSettings,
    /// SHA-256(stored bcrypt hash ‖ username ‖ 0 ‖ password) → (user index, expiry in ms).
    /// Keying by the stored hash salts the entry with the user's bcrypt salt, so this memory
    /// never holds a plain, unsalted hash of a password.
    cache: RefCell<HashMap<[u8; 32], (usize, u64)>>,
}

impl BasicAuth {
    pub fn new(settings: BasicSettings) -> Self {
        Self {
            settings,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// The user these credentials belong to, if the password is right.
    pub fn check(&self, username: &str, password: &str, now_ms: u64) -> Option<&User> {
        let Some(index) = self
            .settings
            .users
            .iter()
            .position(|u| u.username == username)
        else {
            // Unknown user: spend the same time as a wrong password so the response time does not
            // tell which usernames exist. The result is ignored.
            if let Some(first) = self.settings.users.first() {
                let _ = bcrypt::verify(password, &first.password_hash);
            }
            return None;
        };
        let user = self.settings.users.get(index)?;
        let key = cache_key(user, password);
        let ttl = self.settings.cache_ttl_ms;
        if ttl > 0
            && let Some((cached, expires)) = self.cache.borrow().get(&key)
            && *cached == index
            && *expires > now_ms
        {
            return Some(user);
        }
        if !bcrypt::verify(password, &user.password_hash).unwrap_or(false) {
            return None;
        }
        if ttl > 0 {
            let mut cache = self.cache.borrow_mut();
            if cache.len() >= CACHE_CAPACITY {
                cache.retain(|_, (_, expires)| *expires > now_ms);
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(key, (index, now_ms.saturating_add(ttl)));
        }
        Some(user)
    }
}

fn cache_key(user: &User, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.password_hash.as_bytes());
    h.update(user.username.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Identity;

    fn auth(ttl: u64) -> BasicAuth {
        let hash = bcrypt::hash_with_salt("s3cret", 4, [7u8; 16])
            .expect("hash")
            .format_for_version(bcrypt::Version::TwoB);
        BasicAuth::new(BasicSettings {
            users: vec![User {
                username: "alice".into(),
                password_hash: hash,
                identity: Identity {
                    consumer: "alice".into(),
                    roles: vec![],
                    plan: None,
                },
            }],
            cache_ttl_ms: ttl,
        })
    }

    #[test]
    fn checks_and_caches() {
        let a = auth(1000);
        assert!(a.check("alice", "s3cret", 0).is_some());
        assert_eq!(a.cache.borrow().len(), 1);
        assert!(a.check("alice", "s3cret", 500).is_some(), "cached");
        assert!(
            a.check("alice", "wrong", 500).is_none(),
            "wrong password never hits the cache"
        );
        assert!(
            a.check("bob", "s3cret", 500).is_none(),
            "another user's password"
        );
        assert!(
            a.check("alice", "s3cret", 2000).is_some(),
            "expired entry: checked again"
        );
        assert!(auth(0).check("alice", "s3cret", 0).is_some());
    }

    #[test]
    fn hashes_and_headers() {
        assert!(check_hash("$2b$04$abcdefghijklmnopqrstuuJ8uDOaXjOWpZc2mM6RxHxBGE5kV3bC2").is_ok());
        assert!(
            check_hash("$2b$13$abcdefghijklmnopqrstuuJ8uDOaXjOWpZc2mM6RxHxBGE5kV3bC2").is_err()
        );
        assert!(check_hash("plain").is_err());
        assert_eq!(
            decode_credentials("YWxpY2U6czNjOnJldA=="),
            Some(("alice".into(), "s3c:ret".into()))
        );
        assert_eq!(decode_credentials("!!"), None);
    }
}
