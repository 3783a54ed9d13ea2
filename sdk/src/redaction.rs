//! Masking of personal data in JSON documents by the gateway, in native code (contract 0.2
//! `redaction`): the engine of the built-in `redact` plugin, compiled once per instance from a
//! `redact` config and run on a whole document per call. The plugin that uses it keeps its own
//! policy (which bodies, what an invalid document means, what it counts) and can mask a
//! document itself when the gateway refuses one (past 1 MiB).
//!
//! ```no_run
//! use tollgate_sdk::redaction::{JsonOutcome, Policy};
//!
//! let policy = Policy::create(r#"{"fields": ["email"]}"#)?;
//! let done = policy.redact_json(br#"{"email":"a@example.com"}"#)?;
//! if let JsonOutcome::Masked(document) = done.outcome {
//!     assert!(!document.is_empty());
//! }
//! # Ok::<(), String>(())
//! ```

use crate::__private::tollgate::plugin::redaction as raw;
use crate::Response;

pub use raw::{BodyOutcome, BodyRedaction, JsonOutcome, JsonRedaction};

/// A `redact` config compiled and held by the gateway for this instance.
#[derive(Debug)]
pub struct Policy(raw::Policy);

impl Policy {
    /// Compile `config` (a `redact` config as JSON, at most 64 KiB; at most 8 per instance).
    pub fn create(config: &str) -> Result<Self, String> {
        raw::Policy::create(config).map(Self)
    }

    /// Mask one UTF-8 JSON document: its outcome and the values masked per rule. Fails past
    /// 1 MiB.
    pub fn redact_json(&self, document: &[u8]) -> Result<JsonRedaction, String> {
        self.0.redact_json(document)
    }

    /// Mask the response body, a JSON document, where the gateway holds it (in `on_response`):
    /// read if no plugin has, masked, and replaced when anything was masked, without crossing
    /// into the plugin. A replaced body loses its digest headers and a strong `ETag` becomes
    /// weak. A status without a body (1xx, 204, 304) is [`BodyOutcome::Unchanged`]. A body over
    /// 1 MiB is left for the plugin ([`BodyOutcome::TooLarge`]). Fails with
    /// [`Response::body`]'s message when the body cannot be read.
    pub fn redact_response(&self, resp: &Response<'_>) -> Result<BodyRedaction, String> {
        self.0.redact_response(resp.raw())
    }
}
