//! The Rust equivalent of `examples/python-signature`: HMAC-SHA256 request signatures, same
//! config, same string to sign, same answers. Exists to compare cost and memory per call.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, clock, context, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    secret: String,
    #[serde(default = "default_key_id")]
    key_id: String,
    #[serde(default = "default_signature_header")]
    signature_header: String,
    #[serde(default = "default_timestamp_header")]
    timestamp_header: String,
    #[serde(default = "default_max_skew")]
    max_skew_seconds: u64,
    #[serde(default = "default_context_key")]
    context_key: String,
}

fn default_key_id() -> String {
    "default".into()
}
fn default_signature_header() -> String {
    "x-signature".into()
}
fn default_timestamp_header() -> String {
    "x-timestamp".into()
}
fn default_max_skew() -> u64 {
    300
}
fn default_context_key() -> String {
    "signature_key".into()
}

struct Signature(Config);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unauthorized(reason: &str, message: &str) -> Action {
    Action::json(
        401,
        &serde_json::json!({ "error": "invalid_signature", "reason": reason, "message": message }),
    )
}

impl Plugin for Signature {
    type Config = Config;

    fn init(config: Config) -> Result<Self, String> {
        if config.secret.len() < 16 {
            return Err("`secret` is required: a string of at least 16 characters".into());
        }
        if !(1..=86400).contains(&config.max_skew_seconds) {
            return Err("`max_skew_seconds` must be an integer in 1..=86400".into());
        }
        Ok(Self(config))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request()
    }

    fn on_request(&self, req: &Request) -> Action {
        let c = &self.0;
        let (Some(signature), Some(timestamp)) = (
            req.header(&c.signature_header),
            req.header(&c.timestamp_header),
        ) else {
            return unauthorized(
                "missing",
                &format!(
                    "the request must carry {} and {}",
                    c.signature_header, c.timestamp_header
                ),
            );
        };
        let Ok(sent) = timestamp.trim().parse::<i64>() else {
            return unauthorized(
                "bad_timestamp",
                &format!("{} must be Unix seconds", c.timestamp_header),
            );
        };
        let now = (clock::now_millis() / 1000) as i64;
        if now.abs_diff(sent) > c.max_skew_seconds {
            return unauthorized(
                "stale",
                &format!(
                    "{} is more than {} s away from the gateway's clock",
                    c.timestamp_header, c.max_skew_seconds
                ),
            );
        }
        let body = match req.body() {
            Ok(body) => body,
            Err(e) => {
                log::error(&format!("request body unavailable: {e}"));
                return unauthorized("no_body", "the request body could not be read");
            }
        };
        let text = format!(
            "{}\n{}\n{}\n{}",
            req.method(),
            req.path(),
            timestamp,
            hex(&Sha256::digest(&body))
        );
        let given = signature.trim();
        let given = given.strip_prefix("sha256=").unwrap_or(given);
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(c.secret.as_bytes()) else {
            return unauthorized("mismatch", "the signature does not match the request");
        };
        mac.update(text.as_bytes());
        let Some(given) = decode_hex(given) else {
            return unauthorized("mismatch", "the signature does not match the request");
        };
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&given).is_err() {
            log::info("signature mismatch");
            return unauthorized("mismatch", "the signature does not match the request");
        }
        context::set(&c.context_key, &c.key_id);
        Action::Continue
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

tollgate_sdk::export_plugin!(Signature);
