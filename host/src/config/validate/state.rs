//! `[state]`: where plugins' shared state lives, in memory or in Redis.

use std::time::Duration;

use super::Validator;
use crate::config::model::StateSettings;
use crate::config::raw::{RawState, RawStateBackend};

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_STATE_TIMEOUT_MS: u64 = 50;
const MAX_STATE_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_REDIS_KEY_PREFIX: &str = "tollgate:";

impl Validator<'_> {
    /// `[state]`: memory unless `backend = "redis"`; Redis settings only with Redis.
    pub(super) fn state(&mut self, value: Option<toml::Value>) -> StateSettings {
        let Some(value) = value else {
            return StateSettings::Memory;
        };
        let Some(raw) = self.de::<RawState>("state", value) else {
            return StateSettings::Memory;
        };
        match raw.backend.unwrap_or(RawStateBackend::Memory) {
            RawStateBackend::Memory => {
                for (field, set) in [
                    ("url", raw.url.is_some()),
                    ("timeout_ms", raw.timeout_ms.is_some()),
                    ("key_prefix", raw.key_prefix.is_some()),
                ] {
                    if set {
                        self.issues.push(
                            format!("state.{field}"),
                            "is only used with backend = \"redis\"",
                        );
                    }
                }
                StateSettings::Memory
            }
            RawStateBackend::Redis => {
                let url = raw.url.unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
                if let Err(e) = redis::Client::open(url.as_str()) {
                    self.issues.push(
                        "state.url",
                        format!("`{url}` is not a usable Redis URL (redis://host:port[/db]): {e}"),
                    );
                }
                let timeout = match raw.timeout_ms {
                    Some(ms) if !(1..=MAX_STATE_TIMEOUT_MS).contains(&ms) => {
                        self.issues.push(
                            "state.timeout_ms",
                            format!("must be between 1 and {MAX_STATE_TIMEOUT_MS}"),
                        );
                        DEFAULT_STATE_TIMEOUT_MS
                    }
                    Some(ms) => ms,
                    None => DEFAULT_STATE_TIMEOUT_MS,
                };
                StateSettings::Redis {
                    url,
                    timeout: Duration::from_millis(timeout),
                    key_prefix: raw
                        .key_prefix
                        .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned()),
                }
            }
        }
    }
}
