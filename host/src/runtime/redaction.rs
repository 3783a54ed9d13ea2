//! The 0.2.0 `redaction` import: the `redact` plugin's engine (the `tollgate-redaction` crate),
//! run natively on a JSON document the plugin hands over, or on the response body where the
//! host holds it (`redact-response`: the body does not cross into the guest and back, and the
//! host fixes the masked body's digest and `ETag` headers, which would cost the plugin five
//! more calls into the host).
//! Compiled to Wasm, the same scanner and detectors take about three times as long, and on a
//! JSON response they are nearly all of the plugin's cost.
//!
//! The guest's limits still hold: a config is at most 64 KiB and an instance holds at most 8
//! policies (each compiles its patterns, capped at 1 MiB of program each); a document is at
//! most 1 MiB, so one call's output (masks can be longer than the values they replace) and its
//! running time without an epoch check stay bounded; the plugin masks a larger document
//! itself, under its own memory and time limits. A panic in the engine fails the call with a
//! message instead of unwinding through the guest.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use http::HeaderMap;
use tollgate_redaction::body::redact_json_here;
use tollgate_redaction::config::{RawConfig, Settings, validate};
use tollgate_redaction::response;
use wasmtime::component::Resource;

use super::bindings::v02::tollgate::plugin::redaction::{
    BodyOutcome, BodyRedaction, Host, HostPolicy, JsonOutcome, JsonRedaction,
};
use super::host_request::set_header;
use super::host_state::HostState;
use super::limits::PluginLimits;
use crate::chain::ResponseState;

/// Longest config text `create` compiles.
const MAX_CONFIG_BYTES: usize = 64 << 10;
/// Largest document `redact-json` and `redact-response` mask.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Policies one instance may hold at once.
const MAX_POLICIES_PER_INSTANCE: usize = 8;

/// One run of the engine over a document: the masked text (`None`: nothing was masked) or why
/// it is not JSON, and the values masked per rule.
struct Pass {
    result: Result<Option<Vec<u8>>, String>,
    counts: Vec<u64>,
}

/// What `redact-response` makes of a body: its outcome, the masked body to put in its place,
/// and the values masked per rule.
pub struct BodyPass {
    /// What the guest is told.
    pub outcome: BodyOutcome,
    /// The new body, when anything was masked.
    pub masked: Option<Vec<u8>>,
    /// Values masked per rule.
    pub counts: Vec<u64>,
}

/// A `redact` config compiled by the host for one plugin instance.
#[derive(Debug)]
pub struct Policy(Settings);

impl Policy {
    /// Validate and compile a config, with the messages the plugin gives for it.
    pub fn compile(config: &str) -> Result<Self, String> {
        if config.len() > MAX_CONFIG_BYTES {
            return Err(format!(
                "a redaction config may be at most {} KiB (got {} bytes)",
                MAX_CONFIG_BYTES >> 10,
                config.len()
            ));
        }
        let raw: RawConfig =
            serde_json::from_str(config).map_err(|e| format!("invalid config: {e}"))?;
        validate(raw).map(Self)
    }

    /// Mask one document: its outcome and the values masked per rule.
    pub fn redact_json(&self, document: &[u8]) -> Result<JsonRedaction, String> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "the host masks documents of at most {} MiB (got {} bytes)",
                MAX_DOCUMENT_BYTES >> 20,
                document.len()
            ));
        }
        let Pass { result, counts } = self.pass(document)?;
        let outcome = match result {
            Ok(None) => JsonOutcome::Unchanged,
            Ok(Some(masked)) => JsonOutcome::Masked(masked),
            Err(why) => JsonOutcome::Invalid(why),
        };
        Ok(JsonRedaction { outcome, counts })
    }

    /// Mask a response body. An empty body is unchanged; one over the cap is left for the
    /// plugin.
    pub fn redact_body(&self, body: &[u8]) -> Result<BodyPass, String> {
        if body.is_empty() || body.len() > MAX_DOCUMENT_BYTES {
            let outcome = if body.is_empty() {
                BodyOutcome::Unchanged
            } else {
                BodyOutcome::TooLarge
            };
            let counts = vec![0; self.0.rule_names.len()];
            return Ok(BodyPass {
                outcome,
                masked: None,
                counts,
            });
        }
        let Pass { result, counts } = self.pass(body)?;
        let (outcome, masked) = match result {
            Ok(None) => (BodyOutcome::Unchanged, None),
            Ok(Some(masked)) => (BodyOutcome::Masked, Some(masked)),
            Err(why) => (BodyOutcome::Invalid(why), None),
        };
        Ok(BodyPass {
            outcome,
            masked,
            counts,
        })
    }

    /// The engine over one document, with a panic turned into a message.
    fn pass(&self, document: &[u8]) -> Result<Pass, String> {
        let mut counts = vec![0; self.0.rule_names.len()];
        let result = catch_unwind(AssertUnwindSafe(|| {
            redact_json_here(&self.0, document, &mut counts)
        }))
        .map_err(|_| "the host's redaction engine failed on this document".to_owned())?;
        Ok(Pass { result, counts })
    }
}

/// A masked body's headers: the digests go, a strong `ETag` becomes weak (one that the header
/// caps leave no room to weaken goes: a strong validator must not name the masked body).
fn masked_headers(headers: &mut HeaderMap, limits: &PluginLimits) {
    for name in response::DIGEST_HEADERS {
        headers.remove(*name);
    }
    let Some(etag) = headers.get(http::header::ETAG) else {
        return;
    };
    let kept = match etag.to_str().ok().map(response::weak_etag) {
        // Weak already.
        Some(None) => true,
        Some(Some(weak)) => set_header(headers, limits, "etag", weak).is_ok(),
        // Not text: it cannot be weakened.
        None => false,
    };
    if !kept {
        headers.remove(http::header::ETAG);
    }
}

impl Host for HostState {}

impl HostPolicy for HostState {
    fn create(&mut self, config: String) -> wasmtime::Result<Result<Resource<Policy>, String>> {
        if self.policies_held >= MAX_POLICIES_PER_INSTANCE {
            return Ok(Err(format!(
                "an instance may hold at most {MAX_POLICIES_PER_INSTANCE} redaction policies; drop unused ones"
            )));
        }
        let policy = match Policy::compile(&config) {
            Ok(policy) => policy,
            Err(message) => return Ok(Err(message)),
        };
        let handle = self.table.push(policy)?;
        self.policies_held += 1;
        Ok(Ok(handle))
    }

    fn redact_json(
        &mut self,
        policy: Resource<Policy>,
        document: Vec<u8>,
    ) -> wasmtime::Result<Result<JsonRedaction, String>> {
        Ok(self.table.get(&policy)?.redact_json(&document))
    }

    async fn redact_response(
        &mut self,
        policy: Resource<Policy>,
        resp: Resource<ResponseState>,
    ) -> wasmtime::Result<Result<BodyRedaction, String>> {
        // A status without a body is not read: it masks as an empty body does.
        let body = if !response::has_body(self.table.get(&resp)?.status.as_u16()) {
            Bytes::new()
        } else {
            match self.response_body(&resp).await? {
                Ok(body) => body,
                Err(message) => return Ok(Err(message)),
            }
        };
        let done = match self.table.get(&policy)?.redact_body(&body) {
            Ok(done) => done,
            Err(message) => return Ok(Err(message)),
        };
        if let Some(masked) = done.masked {
            let resp = self.table.get_mut(&resp)?;
            resp.body = Some(Bytes::from(masked));
            resp.lazy_body = None;
            masked_headers(&mut resp.headers, &self.limits);
        }
        Ok(Ok(BodyRedaction {
            outcome: done.outcome,
            counts: done.counts,
        }))
    }

    fn drop(&mut self, policy: Resource<Policy>) -> wasmtime::Result<()> {
        self.table.delete(policy)?;
        self.policies_held = self.policies_held.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::limits::header_bytes;

    const CONFIG: &str = r#"{"fields": [{"match": "$..email", "style": "hash"}],
        "detectors": {"card": "partial"}, "hash_key": "unit-test-only-key-0123456789"}"#;

    fn policy() -> Policy {
        Policy::compile(CONFIG).expect("the config is valid")
    }

    #[test]
    fn a_document_is_masked_and_counted_per_rule() {
        // A leading byte-order mark is allowed, as the plugin allows it.
        let document = "\u{feff}{\"user\": {\"email\": \"a@example.com\"}, \"card\": \"4111 1111 1111 1111\", \"n\": 7}";
        let done = policy()
            .redact_json(document.as_bytes())
            .expect("under the cap");
        let JsonOutcome::Masked(masked) = done.outcome else {
            panic!("expected a masked document, got {:?}", done.outcome);
        };
        let value: serde_json::Value = serde_json::from_slice(&masked).expect("still JSON");
        let email = value["user"]["email"].as_str().expect("a string");
        assert!(email.starts_with("hmac:") && email.len() == 37, "{email}");
        assert_eq!(value["card"], "****1111");
        assert_eq!(value["n"], 7);
        assert_eq!(done.counts, vec![1, 1]);
    }

    #[test]
    fn nothing_to_mask_leaves_the_document_and_counts_nothing() {
        let done = policy()
            .redact_json(br#"{"city": "Lisbon", "n": [1, 2]}"#)
            .expect("under the cap");
        assert!(matches!(done.outcome, JsonOutcome::Unchanged));
        assert_eq!(done.counts, vec![0, 0]);
    }

    #[test]
    fn a_document_that_is_not_json_says_why_and_counts_nothing() {
        for bad in [
            &br#"{"email": "a@example.com", "card": "4111 1111 1111 1111""#[..],
            b"{\"email\": \"\xff\"}",
        ] {
            let done = policy().redact_json(bad).expect("under the cap");
            let JsonOutcome::Invalid(why) = done.outcome else {
                panic!("expected invalid, got {:?}", done.outcome);
            };
            assert!(!why.is_empty());
            assert_eq!(done.counts, vec![0, 0]);
        }
    }

    #[test]
    fn a_body_is_masked_left_alone_or_left_for_the_plugin() {
        let policy = policy();
        let done = policy
            .redact_body(br#"{"email": "a@example.com"}"#)
            .expect("the engine ran");
        assert!(matches!(done.outcome, BodyOutcome::Masked));
        let masked = String::from_utf8(done.masked.expect("a masked body")).expect("UTF-8");
        assert!(
            masked.contains("hmac:") && !masked.contains("a@example.com"),
            "{masked}"
        );
        assert_eq!(done.counts, vec![1, 0]);

        let done = policy.redact_body(b"").expect("nothing to run");
        assert!(matches!(done.outcome, BodyOutcome::Unchanged) && done.masked.is_none());
        assert_eq!(done.counts, vec![0, 0]);

        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        let done = policy.redact_body(&big).expect("not run");
        assert!(matches!(done.outcome, BodyOutcome::TooLarge) && done.masked.is_none());

        let done = policy.redact_body(b"{\"email\": ").expect("the engine ran");
        assert!(matches!(done.outcome, BodyOutcome::Invalid(_)) && done.masked.is_none());
        assert_eq!(done.counts, vec![0, 0]);
    }

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let value = http::HeaderValue::from_bytes(value).expect("a valid value");
            headers.append(*name, value);
        }
        headers
    }

    #[test]
    fn a_masked_body_loses_its_digests_and_its_strong_etag() {
        let limits = PluginLimits::default();
        let mut h = headers(&[
            ("content-md5", b"Q2hlY2sgSW50ZWdyaXR5IQ=="),
            ("digest", b"sha-256=abc"),
            ("content-digest", b"sha-256=:abc=:"),
            ("repr-digest", b"sha-256=:abc=:"),
            ("etag", b"\"v1\""),
            ("content-type", b"application/json"),
        ]);
        masked_headers(&mut h, &limits);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h["etag"], "W/\"v1\"");
        assert_eq!(h["content-type"], "application/json");

        // A weak validator stays as it is; one that is not text cannot be weakened and goes.
        let mut h = headers(&[("etag", b"W/\"v1\"")]);
        masked_headers(&mut h, &limits);
        assert_eq!(h["etag"], "W/\"v1\"");
        let mut h = headers(&[("etag", b"\"\xff\"")]);
        masked_headers(&mut h, &limits);
        assert!(h.get("etag").is_none(), "{h:?}");
    }

    #[test]
    fn a_strong_etag_without_room_to_weaken_goes() {
        let mut h = headers(&[("etag", b"\"v1\"")]);
        let limits = PluginLimits {
            max_header_bytes: header_bytes(&h) + 1,
            ..PluginLimits::default()
        };
        masked_headers(&mut h, &limits);
        assert!(
            h.is_empty(),
            "W/ is two bytes more than the cap allows: {h:?}"
        );
    }

    #[test]
    fn an_instance_holds_at_most_eight_policies_and_gets_its_place_back_on_drop() {
        let state = std::sync::Arc::new(crate::runtime::state::MemoryState::new());
        let mut host = HostState::for_tests("redact", state);
        // A config the plugin would refuse is refused here with the same message, and holds
        // no place.
        let err = HostPolicy::create(&mut host, r#"{"detectors": ["dna"]}"#.to_owned())
            .expect("no trap")
            .expect_err("an unknown detector");
        assert!(err.contains("dna"), "{err}");
        let mut held = Vec::new();
        for _ in 0..MAX_POLICIES_PER_INSTANCE {
            let policy = HostPolicy::create(&mut host, CONFIG.to_owned())
                .expect("no trap")
                .expect("under the cap");
            held.push(policy);
        }
        let err = HostPolicy::create(&mut host, CONFIG.to_owned())
            .expect("no trap")
            .expect_err("the ninth is refused");
        assert!(err.contains("at most 8"), "{err}");

        let first = held.remove(0);
        HostPolicy::drop(&mut host, first).expect("dropped");
        let again = HostPolicy::create(&mut host, CONFIG.to_owned()).expect("no trap");
        assert!(again.is_ok(), "a dropped policy's place is free again");
    }

    #[test]
    fn configs_and_documents_past_the_caps_are_refused_with_a_message() {
        let long = format!(r#"{{"fields": ["{}"]}}"#, "a".repeat(MAX_CONFIG_BYTES));
        let err = Policy::compile(&long).expect_err("over 64 KiB");
        assert!(err.contains("64 KiB"), "{err}");
        let err = Policy::compile(r#"{"fields": ["email"], "style": "blur"}"#)
            .expect_err("an unknown style");
        assert!(err.contains("blur"), "{err}");
        let err = Policy::compile("[1, 2]").expect_err("not a config");
        assert!(err.starts_with("invalid config"), "{err}");

        let mut big = String::from("[");
        while big.len() <= MAX_DOCUMENT_BYTES {
            big.push_str("\"a@example.com\",");
        }
        big.push_str("1]");
        let err = policy()
            .redact_json(big.as_bytes())
            .expect_err("over 1 MiB");
        assert!(err.contains("1 MiB"), "{err}");
        assert!(
            policy()
                .redact_json(&big.as_bytes()[..MAX_DOCUMENT_BYTES])
                .is_ok(),
            "exactly 1 MiB is taken"
        );
    }
}
