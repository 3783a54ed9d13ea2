//! An upstream's targets and settings, as one routing table serves them; the live state behind
//! them (health, in-flight counts, retry budget) is in [`super::health`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::health::UpstreamState;
use crate::config::{Upstream, UpstreamTls};

/// An upstream's targets and settings, for one routing table.
#[derive(Debug)]
pub struct UpstreamPool {
    /// The upstream as configured: targets, timeouts, TLS, balancing, health and retries.
    spec: Upstream,
    next: AtomicUsize,
    /// Target health, in-flight counts and the retry budget: carried from table to table by
    /// [`super::health::HealthRegistry`] while the upstream is unchanged.
    shared: OnceLock<Arc<UpstreamState>>,
    /// Which pooled client serves this upstream, computed once (the TLS part hashes files'
    /// digests) rather than on every request.
    pub(crate) client_key: ClientKey,
}

/// Connect timeout and the TLS settings' cache key: what makes two upstreams' clients differ.
pub(crate) type ClientKey = (Duration, Option<String>);

impl UpstreamPool {
    /// Build from the config; `targets` must not be empty (checked by the routing table).
    pub fn new(upstream: &Upstream) -> Self {
        Self {
            spec: upstream.clone(),
            next: AtomicUsize::new(0),
            shared: OnceLock::new(),
            client_key: (
                upstream.connect_timeout,
                upstream.tls.as_ref().map(UpstreamTls::cache_key),
            ),
        }
    }

    /// The upstream's config.
    pub fn spec(&self) -> &Upstream {
        &self.spec
    }

    /// Live target state (fresh, unless a registry adopted this pool first).
    pub fn shared(&self) -> &Arc<UpstreamState> {
        self.shared
            .get_or_init(|| Arc::new(UpstreamState::new(&self.spec)))
    }

    /// Use `state` (kept from an earlier table) if this pool has no state yet.
    pub(crate) fn adopt(&self, state: Arc<UpstreamState>) {
        let _ = self.shared.set(state);
    }

    /// The rotating counter behind round-robin.
    pub(crate) fn rotation(&self) -> &AtomicUsize {
        &self.next
    }

    /// `https` for TLS upstreams, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.spec.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The next available target (see `balance`), or the next in turn when none is available.
    /// For one-off calls that need no retries or in-flight count (plugins' fetches).
    pub fn pick(&self) -> &str {
        if let Some(pick) = super::balance::pick(self, &[])
            && let Some(target) = self.spec.targets.get(pick.index())
        {
            return target;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let targets = &self.spec.targets;
        targets
            .get(n % targets.len().max(1))
            .map_or("", String::as_str)
    }

    /// TCP connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.spec.connect_timeout
    }

    /// Time allowed for the response head.
    pub fn request_timeout(&self) -> Duration {
        self.spec.request_timeout
    }

    /// Whether plugins may `fetch` from link-local targets of this upstream.
    pub fn allow_link_local(&self) -> bool {
        self.spec.allow_link_local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_targets() {
        let pool = UpstreamPool::new(&Upstream {
            name: "u".into(),
            targets: vec!["a:1".into(), "b:2".into()],
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            ..Upstream::default()
        });
        let picks: Vec<&str> = (0..4).map(|_| pool.pick()).collect();
        assert_eq!(picks, ["a:1", "b:2", "a:1", "b:2"]);
    }
}
