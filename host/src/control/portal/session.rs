//! Server-side sessions of the portal and the dashboard: a random id (32 bytes from the
//! system's CSPRNG) in a cookie names a record kept in this process's memory; the record holds
//! who signed in and the session's CSRF token. Sessions end after [`IDLE`] without a request,
//! at sign-out, and when the control plane restarts (then people sign in again).
//!
//! The id is replaced at every sign-in ([`Sessions::rotate`]), so an id planted before sign-in
//! (session fixation) never becomes a signed-in session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::http::ApiError;
use super::super::roles::{Role, random_secret};

/// A session unused this long is gone.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// At most this many sessions are kept; past it the oldest idle ones go first.
const MAX_SESSIONS: usize = 100_000;

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Not signed in (the session exists to carry the CSRF token of the sign-in forms).
    Anonymous,
    /// A developer: their account's sign-in name (also their consumer's name).
    Developer {
        /// Sign-in name and consumer.
        username: String,
        /// Shown in the header.
        display_name: String,
    },
    /// A person with a management token.
    Operator {
        /// The token's name (the audit log's actor).
        name: String,
        /// Its role.
        role: Role,
        /// SHA-256 of the token: checked on every request, so a revoked token's session ends.
        token_hash: String,
    },
}

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in.
    pub who: Who,
    /// The token every form of this session carries.
    pub csrf: String,
    /// A one-time message for the next page (a new key is shown this way, once).
    pub flash: Option<String>,
    last_used: Instant,
}

/// Every live session.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live session with this id (its idle clock restarts), taking its flash message.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.lock();
        let session = map.get_mut(id)?;
        if session.last_used.elapsed() > IDLE {
            map.remove(id);
            return None;
        }
        session.last_used = Instant::now();
        let copy = session.clone();
        session.flash = None;
        Some(copy)
    }

    /// A new session for `who`: its id and record.
    pub fn create(&self, who: Who) -> Result<(String, Session), ApiError> {
        let id = random_secret("", 32)?;
        let session = Session {
            who,
            csrf: random_secret("", 32)?,
            flash: None,
            last_used: Instant::now(),
        };
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.last_used.elapsed() <= IDLE);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.last_used)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// Sign-in: the old id is forgotten and a new session (new id, new CSRF token) is made.
    pub fn rotate(&self, old: &str, who: Who) -> Result<(String, Session), ApiError> {
        self.lock().remove(old);
        self.create(who)
    }

    /// Sign-out.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Leave a message for the session's next page.
    pub fn flash(&self, id: &str, message: String) {
        if let Some(s) = self.lock().get_mut(id) {
            s.flash = Some(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_forgets_the_old_id() {
        let sessions = Sessions::default();
        let (old, anon) = sessions
            .create(Who::Anonymous)
            .unwrap_or_else(|e| panic!("{e}"));
        let who = Who::Developer {
            username: "ada".into(),
            display_name: "Ada".into(),
        };
        let (new, signed) = sessions
            .rotate(&old, who.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(old, new);
        assert_ne!(anon.csrf, signed.csrf);
        assert!(sessions.get(&old).is_none());
        assert_eq!(sessions.get(&new).map(|s| s.who), Some(who));
    }

    #[test]
    fn a_flash_is_shown_once() {
        let sessions = Sessions::default();
        let (id, _) = sessions
            .create(Who::Anonymous)
            .unwrap_or_else(|e| panic!("{e}"));
        sessions.flash(&id, "key".into());
        assert_eq!(sessions.get(&id).and_then(|s| s.flash), Some("key".into()));
        assert_eq!(sessions.get(&id).and_then(|s| s.flash), None);
    }
}
