//! `[access_log]`: whether the JSON access log is on, where its lines go and how many may queue.

use super::Validator;
use crate::config::model::{AccessLogDestination, AccessLogSettings};
use crate::config::raw::{RawAccessLog, RawAccessLogDestination};

const DEFAULT_ACCESS_LOG_BUFFER: usize = 16_384;

impl Validator<'_> {
    /// `[access_log]`: present means on (unless `enabled = false`); `file` needs `path`.
    pub(super) fn access_log(&mut self, value: Option<toml::Value>) -> AccessLogSettings {
        let mut settings = AccessLogSettings {
            buffer: DEFAULT_ACCESS_LOG_BUFFER,
            ..AccessLogSettings::default()
        };
        let Some(value) = value else {
            return settings;
        };
        let Some(raw) = self.de::<RawAccessLog>("access_log", value) else {
            return settings;
        };
        settings.enabled = raw.enabled.unwrap_or(true);
        if let Some(buffer) = raw.buffer {
            if buffer == 0 {
                self.issues
                    .push("access_log.buffer", "must be greater than 0");
            } else {
                settings.buffer = buffer;
            }
        }
        settings.destination = match (raw.destination, raw.path) {
            (Some(RawAccessLogDestination::File), Some(path)) if !path.is_empty() => {
                AccessLogDestination::File(self.base.join(path))
            }
            (Some(RawAccessLogDestination::File), _) => {
                self.issues
                    .push("access_log.path", "`destination = \"file\"` needs a `path`");
                AccessLogDestination::Stdout
            }
            (_, Some(_)) => {
                self.issues.push(
                    "access_log.path",
                    "`path` is only used with `destination = \"file\"`",
                );
                AccessLogDestination::Stdout
            }
            (Some(RawAccessLogDestination::Stderr), None) => AccessLogDestination::Stderr,
            (Some(RawAccessLogDestination::Stdout) | None, None) => AccessLogDestination::Stdout,
        };
        settings
    }
}
