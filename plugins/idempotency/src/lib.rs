//! Tollgate built-in plugin `idempotency`: the `Idempotency-Key` header, as payment APIs use it.
//! Written on contract 0.2.0 (lazy bodies, set-if-absent locks, `upstream-error`).
//!
//! ```toml
//! [plugins.idem]
//! module = "idempotency"
//! [plugins.idem.config]
//! ttl_s = 86400
//! ```
//!
//! For a request of one of `methods` with the header, scoped per consumer (the auth plugin's
//! `consumer`, or `anonymous`):
//! - the first request takes a lock (`set-if-absent`, `lock_ttl_s`) and goes upstream; its
//!   response (unless 5xx) is stored for `ttl_s` and the lock released;
//! - the same key and the same request (method, path, query, body) again → the stored response,
//!   with `Idempotent-Replayed: true`, without calling the upstream;
//! - the same key with another request → 422; while the first is in flight → 409;
//! - a 5xx, or an upstream failure the gateway answered itself (502/504), is not stored and
//!   releases the lock at once, so the client may retry.
//!
//! Only requests that carry the key are buffered; everything else streams.

mod config;
mod record;

use config::{RawConfig, Settings};
use record::{Head, Stored, lock_fp, lock_value};
use sha2::{Digest, Sha256};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, Response, context, log, state};

/// Context keys carrying the lock from the request to the response phase.
const CTX_SCOPE: &str = "idempotency.scope";
const CTX_LOCK: &str = "idempotency.lock";
/// Longest key accepted.
const MAX_KEY_BYTES: usize = 255;
/// Response headers never stored (connection-level, or per-exchange).
const NOT_STORED: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "x-request-id",
];

struct Idempotency(Settings);

fn error(status: u16, code: &str, message: &str) -> Action {
    Action::json(
        status,
        &serde_json::json!({ "error": code, "message": message }),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Method, path, query and body: what must be the same for a replay.
fn fingerprint(req: &Request<'_>, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [
        req.method().as_bytes(),
        req.path().as_bytes(),
        req.query().unwrap_or_default().as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(body);
    hex(&h.finalize())
}

fn replay(stored: Stored) -> Action {
    let mut action = Action::respond(stored.head.status);
    for (name, value) in stored.head.headers {
        action = action.header(name, value);
    }
    action
        .header("idempotent-replayed", "true")
        .body(stored.body)
}

/// The stored response, or the 422 for a key reused with another request.
fn answer_from(stored: Stored, fp: &str) -> Action {
    if stored.head.fp == fp {
        replay(stored)
    } else {
        error(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        )
    }
}

fn release(scope: &str, lock: &str) {
    if let Err(e) = state::compare_and_set(&format!("lock:{scope}"), lock.as_bytes(), None, 0) {
        log::warn(&format!("idempotency: releasing the lock failed: {e}"));
    }
}

impl Idempotency {
    fn stored(&self, scope: &str) -> Result<Option<Stored>, String> {
        Ok(state::get_bytes(&format!("done:{scope}"))?.and_then(|b| Stored::decode(&b)))
    }

    /// Take the lock, or say why not (replay, 409, 422).
    fn begin(&self, req: &Request<'_>, key: &str) -> Result<Action, String> {
        let body = match req.body() {
            Ok(body) => body,
            // Too large or broken off: the gateway answers the client itself.
            Err(_) => return Ok(Action::Continue),
        };
        let fp = fingerprint(req, &body);
        let consumer = context::get("consumer").unwrap_or_else(|| "anonymous".into());
        let scope = format!(
            "{}:{}",
            state::key_segment(&consumer),
            state::key_segment(key)
        );
        if let Some(stored) = self.stored(&scope)? {
            return Ok(answer_from(stored, &fp));
        }
        let request_id = req.header("x-request-id").unwrap_or_default();
        let lock = lock_value(&fp, &request_id);
        let lock_key = format!("lock:{scope}");
        if !state::set_if_absent(&lock_key, &lock, self.0.lock_ttl_ms)? {
            let holder = state::get_bytes(&lock_key)?.unwrap_or_default();
            // Finished between the two reads: answer from the record.
            if holder.is_empty()
                && let Some(stored) = self.stored(&scope)?
            {
                return Ok(answer_from(stored, &fp));
            }
            if !holder.is_empty() && lock_fp(&holder) != fp.as_bytes() {
                return Ok(error(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key is in use by a different request",
                ));
            }
            return Ok(error(
                409,
                "request_in_flight",
                "a request with this Idempotency-Key is still being processed",
            )
            .header("retry-after", "1"));
        }
        let lock = String::from_utf8_lossy(&lock).into_owned();
        // The first request may have finished just before we took the lock.
        if let Some(stored) = self.stored(&scope)? {
            release(&scope, &lock);
            return Ok(answer_from(stored, &fp));
        }
        context::set(CTX_SCOPE, &scope);
        context::set(CTX_LOCK, &lock);
        Ok(Action::Continue)
    }

    /// Store the response (unless 5xx, failed upstream or too large) and release the lock.
    fn finish(&self, resp: &Response<'_>, scope: &str, lock: &str) -> Result<(), String> {
        let status = resp.status();
        if resp.upstream_error().is_some() || status >= 500 {
            return Ok(());
        }
        let body = resp.body()?;
        if body.len() > self.0.max_response_bytes {
            log::info("idempotency: response too large to store; not replayable");
            return Ok(());
        }
        let headers = resp
            .headers()
            .into_iter()
            .filter(|(name, _)| !NOT_STORED.contains(&name.as_str()))
            .collect();
        let fp = String::from_utf8_lossy(lock_fp(lock.as_bytes())).into_owned();
        let stored = Stored {
            head: Head {
                fp,
                status,
                headers,
            },
            body,
        };
        state::set_bytes(&format!("done:{scope}"), &stored.encode(), self.0.ttl_ms)
    }
}

impl Plugin for Idempotency {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(Idempotency)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request().response()
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        let method = req.method();
        if !self.0.methods.contains(&method) {
            return Action::Continue;
        }
        let Some(key) = req.header(&self.0.header) else {
            return if self.0.required {
                error(
                    400,
                    "idempotency_key_required",
                    "this request needs an Idempotency-Key header",
                )
            } else {
                Action::Continue
            };
        };
        if key.is_empty()
            || key.len() > MAX_KEY_BYTES
            || !key.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return error(
                400,
                "invalid_idempotency_key",
                "an Idempotency-Key is 1 to 255 printable ASCII characters",
            );
        }
        match self.begin(req, &key) {
            Ok(action) => action,
            Err(e) => {
                log::warn(&format!("idempotency: state failed: {e}"));
                error(
                    503,
                    "idempotency_unavailable",
                    "idempotency state is unavailable",
                )
            }
        }
    }

    fn on_response(&self, _req: &Request<'_>, resp: &Response<'_>) -> Action {
        let (Some(scope), Some(lock)) = (context::get(CTX_SCOPE), context::get(CTX_LOCK)) else {
            return Action::Continue;
        };
        if let Err(e) = self.finish(resp, &scope, &lock) {
            log::warn(&format!("idempotency: storing the response failed: {e}"));
        }
        release(&scope, &lock);
        Action::Continue
    }
}

tollgate_sdk::export_plugin!(Idempotency);
