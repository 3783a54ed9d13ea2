//! `[upstreams.NAME]`: targets and timeouts; balancing and health in `resilience`, TLS and
//! `https://` targets in `tls`.

use std::collections::BTreeMap;

use super::Validator;
use super::validator::check_name;
use crate::config::model::Upstream;
use crate::config::raw::RawUpstream;

const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

impl Validator<'_> {
    /// `[upstreams.NAME]` entries by name; an entry with a wrong shape is left out.
    pub(super) fn upstreams(&mut self, value: Option<toml::Value>) -> BTreeMap<String, Upstream> {
        let mut out = BTreeMap::new();
        for (name, value) in self.entries("upstreams", value) {
            let path = format!("upstreams.{name}");
            check_name(self.issues, &path, &name);
            let Some(raw) = self.de::<RawUpstream>(&path, value) else {
                continue;
            };
            if raw.targets.is_empty() {
                self.issues
                    .push(format!("{path}.targets"), "needs at least one target");
            }
            let resilience = self.resilience(&path, &raw);
            // `https://` targets and `tls` (docs/tls.md); targets come back as `host:port`.
            let (targets, tls) = self.upstream_targets(&path, raw.targets, raw.tls);
            let connect = self.millis(
                &path,
                "connect_timeout_ms",
                raw.connect_timeout_ms,
                DEFAULT_CONNECT_TIMEOUT_MS,
            );
            let request = self.millis(
                &path,
                "request_timeout_ms",
                raw.request_timeout_ms,
                DEFAULT_REQUEST_TIMEOUT_MS,
            );
            out.insert(
                name.clone(),
                Upstream {
                    name,
                    targets,
                    connect_timeout: connect,
                    request_timeout: request,
                    allow_link_local: raw.allow_link_local.unwrap_or(false),
                    tls,
                    ..resilience
                },
            );
        }
        out
    }
}
