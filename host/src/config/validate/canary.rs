//! `[plugins.NAME.canary]` and its `rollback` rule (docs/rollout.md): the canary's module and
//! config, its share of the traffic, the split key, and when it is taken out by itself.

use std::path::Path;
use std::time::Duration;

use super::Validator;
use crate::config::model::{CanarySpec, CanarySplit, RollbackRule};
use crate::config::raw::{RawCanary, RawRollback};

const DEFAULT_MIN_REQUESTS: u64 = 100;
const DEFAULT_WINDOW_MS: u64 = 60_000;

impl Validator<'_> {
    /// `[plugins.NAME.canary]` at `path`; `None` when its module or config cannot be used.
    pub(super) fn canary(
        &mut self,
        path: &str,
        raw: RawCanary,
        plugin_dir: &Path,
    ) -> Option<CanarySpec> {
        let (module, config_json) =
            self.module_and_config(path, &raw.module, raw.config, plugin_dir)?;
        let basis_points = if raw.percent.is_finite() && (0.0..=100.0).contains(&raw.percent) {
            (raw.percent * 100.0).round() as u32
        } else {
            self.issues.push(
                format!("{path}.percent"),
                format!("{} is not a percentage from 0 to 100", raw.percent),
            );
            0
        };
        let split = self.split(path, raw.split.as_deref().unwrap_or("consumer"));
        let rollback = raw
            .rollback
            .map(|r| self.rollback(&format!("{path}.rollback"), r));
        Some(CanarySpec {
            module,
            config_json,
            basis_points,
            split,
            rollback,
        })
    }

    /// `split = "consumer" | "client_ip" | "request" | "header:NAME"`.
    fn split(&mut self, path: &str, split: &str) -> CanarySplit {
        match split {
            "consumer" => CanarySplit::Consumer,
            "client_ip" => CanarySplit::ClientIp,
            "request" => CanarySplit::Request,
            other => match other
                .strip_prefix("header:")
                .map(|h| http::HeaderName::from_bytes(h.trim().as_bytes()))
            {
                Some(Ok(name)) => CanarySplit::Header(name),
                _ => {
                    self.issues.push(
                        format!("{path}.split"),
                        format!(
                            "`{other}` is not one of \"consumer\", \"client_ip\", \"request\", \"header:NAME\""
                        ),
                    );
                    CanarySplit::Consumer
                }
            },
        }
    }

    /// `[plugins.NAME.canary.rollback]` at `path`.
    fn rollback(&mut self, path: &str, raw: RawRollback) -> RollbackRule {
        let points = raw.max_error_rate_points.filter(|p| {
            let ok = p.is_finite() && (0.0..=100.0).contains(p);
            if !ok {
                self.issues.push(
                    format!("{path}.max_error_rate_points"),
                    "must be percentage points from 0 to 100",
                );
            }
            ok
        });
        let ratio = raw.max_p99_ratio.filter(|r| {
            let ok = r.is_finite() && *r > 1.0;
            if !ok {
                self.issues
                    .push(format!("{path}.max_p99_ratio"), "must be a ratio above 1");
            }
            ok
        });
        if raw.max_error_rate_points.is_none() && raw.max_p99_ratio.is_none() {
            self.issues.push(
                path.to_owned(),
                "needs `max_error_rate_points`, `max_p99_ratio` or both",
            );
        }
        let min_requests = match raw.min_requests {
            Some(0) => {
                self.issues
                    .push(format!("{path}.min_requests"), "must be at least 1");
                DEFAULT_MIN_REQUESTS
            }
            Some(n) => n,
            None => DEFAULT_MIN_REQUESTS,
        };
        let window: Duration = self.millis(path, "window_ms", raw.window_ms, DEFAULT_WINDOW_MS);
        let webhook = raw.webhook.and_then(|url| match url.parse::<http::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => Some(uri),
            _ => {
                self.issues.push(
                    format!("{path}.webhook"),
                    format!("`{url}` is not an http:// URL with a host"),
                );
                None
            }
        });
        RollbackRule {
            max_error_rate_points: points,
            max_p99_ratio: ratio,
            min_requests,
            window,
            webhook,
        }
    }
}
