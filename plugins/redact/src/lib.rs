//! Tollgate built-in plugin `redact`: masks personal data in JSON and text bodies (responses,
//! and optionally requests before they reach the upstream) and in access-log fields.
//!
//! ```toml
//! [plugins.redact]
//! module = "redact"
//! [plugins.redact.config]
//! fields = ["ssn", "$.user.email", "$..card_number"]
//! detectors = { email = "hash", card = "partial", iban = "full" }
//! hash_key = "a-long-random-secret-from-your-vault"
//! ```
//!
//! The engine (rules, detectors, masks, bodies) is the `tollgate-redaction` crate, which the
//! gateway also runs natively: JSON documents go to the gateway's copy through the contract's
//! `redaction` import, about three times faster than the same code in Wasm, and the plugin
//! masks them itself when the gateway refuses one. This file is the policy around it: which
//! phases and bodies, what is refused, and the metrics (each redaction counted per rule, never
//! with its value). See the README for the full config.

use tollgate_redaction::body;
use tollgate_redaction::config::{self, RawConfig, Settings};
use tollgate_redaction::logscrub::{self, LogField};
use tollgate_redaction::response;
use tollgate_sdk::{Action, Capabilities, Plugin, Request, Response, context, log, metrics};

struct Redact(Settings);

impl Redact {
    fn counts(&self) -> Vec<u64> {
        vec![0; self.0.rule_names.len()]
    }

    /// One counter per rule that matched; the values themselves never leave the plugin.
    fn report(&self, counts: &[u64], phase: &str) {
        for (name, &n) in self.0.rule_names.iter().zip(counts) {
            if n > 0 {
                metrics::counter_add("redact_redactions", &[("rule", name), ("phase", phase)], n);
            }
        }
    }

    fn refuse(&self, phase: &str, status: u16, code: &str, message: &str) -> Action {
        metrics::counter_add("redact_refusals", &[("reason", code), ("phase", phase)], 1);
        log::warn(&format!("redact: {phase} body refused: {message}"));
        Action::json(
            status,
            &serde_json::json!({ "error": code, "message": message }),
        )
    }

    /// Put the masked access-log values in the context for the access logger.
    fn scrub_log(&self, req: &Request<'_>, counts: &mut [u64]) {
        for &field in &self.0.log.fields {
            let raw = match field {
                LogField::Path => Some(req.path()),
                LogField::Query => req.query(),
                LogField::ClientIp => Some(req.client_ip()),
                LogField::Consumer => context::get("consumer"),
                LogField::UserAgent => req.header("user-agent"),
                LogField::Referer => req.header("referer"),
            };
            if let Some(masked) = raw.and_then(|v| logscrub::scrub(&self.0, field, &v, counts)) {
                context::set(&field.context_key(), &masked);
            }
        }
    }

    fn request_body(&self, req: &Request<'_>, counts: &mut [u64]) -> Action {
        let body = match req.body() {
            Ok(b) => b,
            Err(e) => return self.refuse("request", 500, "redact_body_unavailable", &e),
        };
        if body.is_empty() {
            return Action::Continue;
        }
        let content_type = req.header("content-type");
        let encoding = req.header_all("content-encoding");
        match self.redact_body("request", content_type.as_deref(), &encoding, &body, counts) {
            body::Outcome::Unchanged | body::Outcome::Skipped => Action::Continue,
            body::Outcome::Replaced(bytes) => match req.set_body(&bytes) {
                Ok(()) => {
                    for name in response::DIGEST_HEADERS {
                        req.remove_header(name);
                    }
                    Action::Continue
                }
                Err(e) => self.refuse("request", 500, "redact_body_unavailable", &e),
            },
            body::Outcome::Refused(r) => {
                self.refuse("request", r.request_status(), r.code(), &r.message())
            }
        }
    }

    fn response_body(&self, resp: &Response<'_>, counts: &mut [u64]) -> Action {
        let content_type = resp.header("content-type");
        let encoding = resp.header_all("content-encoding");
        // The gateway checks the status itself (one call less here).
        #[cfg(target_arch = "wasm32")]
        if let Some(action) =
            self.response_in_gateway(resp, content_type.as_deref(), &encoding, counts)
        {
            return action;
        }
        if !response::has_body(resp.status()) {
            return Action::Continue;
        }
        let body = match resp.body() {
            Ok(b) => b,
            Err(e) => return self.refuse("response", 502, "redact_body_unavailable", &e),
        };
        if body.is_empty() {
            return Action::Continue;
        }
        match self.redact_body(
            "response",
            content_type.as_deref(),
            &encoding,
            &body,
            counts,
        ) {
            body::Outcome::Unchanged | body::Outcome::Skipped => Action::Continue,
            body::Outcome::Replaced(bytes) => match resp.set_body(&bytes) {
                Ok(()) => replaced(resp),
                Err(e) => self.refuse("response", 502, "redact_body_unavailable", &e),
            },
            body::Outcome::Refused(r) => self.refuse("response", 502, r.code(), &r.message()),
        }
    }

    /// A plain JSON response body masked by the gateway where it holds it (it never crosses
    /// into the plugin, and the gateway fixes a masked body's digest and `ETag` headers);
    /// `None` when the plugin reads and masks the body itself: another format, an encoding,
    /// over the gateway's 1 MiB, or not JSON with `invalid_json = "text"`.
    #[cfg(target_arch = "wasm32")]
    fn response_in_gateway(
        &self,
        resp: &Response<'_>,
        content_type: Option<&str>,
        encoding: &[String],
        counts: &mut [u64],
    ) -> Option<Action> {
        use tollgate_sdk::redaction::BodyOutcome;
        let policy = self.0.gateway.as_ref()?;
        if !body::is_plain_json(&self.0, content_type, encoding) {
            return None;
        }
        let done = match policy.redact_response(resp) {
            Ok(done) => done,
            Err(e) => return Some(self.refuse("response", 502, "redact_body_unavailable", &e)),
        };
        for (count, add) in counts.iter_mut().zip(&done.counts) {
            *count = count.saturating_add(*add);
        }
        match done.outcome {
            BodyOutcome::Unchanged | BodyOutcome::Masked => Some(Action::Continue),
            BodyOutcome::Invalid(why) if self.0.invalid_json == config::InvalidJson::Refuse => {
                let r = body::Refusal::InvalidJson(why);
                Some(self.refuse("response", 502, r.code(), &r.message()))
            }
            BodyOutcome::Invalid(_) | BodyOutcome::TooLarge => None,
        }
    }

    /// Redact one body, counting what was skipped or read as text; the caller applies the
    /// outcome to its request or response.
    fn redact_body(
        &self,
        phase: &str,
        content_type: Option<&str>,
        encoding: &[String],
        body: &[u8],
        counts: &mut [u64],
    ) -> body::Outcome {
        let mut notes = body::Notes::default();
        let outcome = body::redact(&self.0, content_type, encoding, body, counts, &mut notes);
        if notes.json_as_text {
            metrics::counter_add("redact_invalid_json_as_text", &[("phase", phase)], 1);
        }
        if matches!(outcome, body::Outcome::Skipped) {
            metrics::counter_add(
                "redact_skipped",
                &[("reason", "content_type"), ("phase", phase)],
                1,
            );
        }
        outcome
    }
}

/// After the plugin replaced the response body: the digests no longer describe it, and a
/// strong validator becomes weak (same redaction, same content).
fn replaced(resp: &Response<'_>) -> Action {
    for name in response::DIGEST_HEADERS {
        resp.remove_header(name);
    }
    if let Some(weak) = resp.header("etag").and_then(|e| response::weak_etag(&e))
        && resp.set_header("etag", &weak).is_err()
    {
        resp.remove_header("etag");
    }
    Action::Continue
}

impl Plugin for Redact {
    /// The config as JSON: validated here, and handed to the gateway as it is.
    type Config = serde_json::Value;

    fn init(config: serde_json::Value) -> Result<Self, String> {
        let text = config.to_string();
        let raw: RawConfig = tollgate_sdk::parse_config(&text)?;
        let settings = config::validate(raw)?;
        // Only Wasm builds have a gateway to hand the config to.
        #[cfg(target_arch = "wasm32")]
        let settings = settings.with_gateway(&text);
        Ok(Redact(settings))
    }

    fn capabilities(&self) -> Capabilities {
        let s = &self.0;
        let mut caps = Capabilities::none();
        // Bodies are read when `body()` is called (contract 0.2): nothing to declare for them.
        if s.request || !s.log.fields.is_empty() {
            caps = caps.request();
        }
        // The consumer may be set by an auth plugin later in the chain: look again on the way back.
        if s.response || s.log.fields.contains(&LogField::Consumer) {
            caps = caps.response();
        }
        caps
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        let mut counts = self.counts();
        if !self.0.log.fields.is_empty() {
            self.scrub_log(req, &mut counts);
            self.report(&counts, "log");
            counts.iter_mut().for_each(|c| *c = 0);
        }
        let action = if self.0.request {
            self.request_body(req, &mut counts)
        } else {
            Action::Continue
        };
        self.report(&counts, "request");
        action
    }

    fn on_response(&self, _req: &Request<'_>, resp: &Response<'_>) -> Action {
        let mut counts = self.counts();
        if self.0.log.fields.contains(&LogField::Consumer) {
            let key = LogField::Consumer.context_key();
            if context::get(&key).is_none()
                && let Some(consumer) = context::get("consumer")
                && let Some(masked) =
                    logscrub::scrub(&self.0, LogField::Consumer, &consumer, &mut counts)
            {
                context::set(&key, &masked);
                self.report(&counts, "log");
                counts.iter_mut().for_each(|c| *c = 0);
            }
        }
        if !self.0.response {
            return Action::Continue;
        }
        let action = self.response_body(resp, &mut counts);
        self.report(&counts, "response");
        action
    }
}

tollgate_sdk::export_plugin!(Redact);
