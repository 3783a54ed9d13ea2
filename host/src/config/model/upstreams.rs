//! `[upstreams.NAME]`: targets and timeouts, balancing, active and passive health, retries and
//! TLS to the targets.

use std::path::PathBuf;
use std::time::Duration;

use http::Method;

/// An upstream: a set of targets, balanced, health-checked and retried as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Name.
    pub name: String,
    /// `host:port` targets.
    pub targets: Vec<String>,
    /// TCP connect timeout (502 beyond).
    pub connect_timeout: Duration,
    /// Time allowed for the upstream's response head (504 beyond).
    pub request_timeout: Duration,
    /// Plugins may `fetch` from this upstream even when a target is link-local (169.254.0.0/16,
    /// fe80::/10: cloud metadata services live there). Off by default.
    pub allow_link_local: bool,
    /// How requests are spread over the targets.
    pub balance: Balance,
    /// Active health checks, when configured.
    pub health_check: Option<HealthCheck>,
    /// Passive ejection of targets that fail requests.
    pub passive: PassiveHealth,
    /// Retries of idempotent requests that never reached a target.
    pub retry: RetryPolicy,
    /// TLS to the targets (`https://` targets); `None` for plain HTTP.
    pub tls: Option<UpstreamTls>,
}

impl Default for Upstream {
    /// No targets, default timeouts, round-robin, passive ejection and retries at their defaults.
    fn default() -> Self {
        Self {
            name: String::new(),
            targets: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            allow_link_local: false,
            balance: Balance::default(),
            health_check: None,
            passive: PassiveHealth::default(),
            retry: RetryPolicy::default(),
            tls: None,
        }
    }
}

/// `balance`: how an upstream picks a target for each request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// Each available target in turn (default).
    #[default]
    RoundRobin,
    /// The available target with the fewest requests in flight (ties in turn).
    LeastConnections,
}

impl Balance {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round-robin",
            Balance::LeastConnections => "least-connections",
        }
    }
}

/// `[upstreams.NAME.health_check]`: a GET to every target each interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path (and query) requested, e.g. `/health`.
    pub path: String,
    /// Time between checks of one target.
    pub interval: Duration,
    /// Time allowed for the whole check (connect, head and body).
    pub timeout: Duration,
    /// Consecutive passing checks that make an unhealthy target healthy.
    pub healthy_threshold: u32,
    /// Consecutive failing checks that make a healthy target unhealthy.
    pub unhealthy_threshold: u32,
    /// Statuses that pass; empty means any 2xx.
    pub expected_statuses: Vec<u16>,
}

impl HealthCheck {
    /// Does this status pass the check?
    pub fn passes(&self, status: u16) -> bool {
        if self.expected_statuses.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expected_statuses.contains(&status)
        }
    }
}

/// `[upstreams.NAME.passive]`: ejecting targets that fail real requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveHealth {
    /// Consecutive failures that eject a target; 0 turns passive ejection off.
    pub max_failures: u32,
    /// The first ejection's length; each repeat doubles it, up to `max_ejection`.
    pub ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// Count 5xx responses as failures (connect errors, resets and timeouts always count).
    pub eject_on_5xx: bool,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        Self {
            max_failures: 5,
            ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            eject_on_5xx: false,
        }
    }
}

/// Retries of requests that never reached a target (connect refused, reset or timed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts per request, each on a different target; 0 turns retries off.
    pub retries: u32,
    /// Methods that may be retried (idempotent ones by default).
    pub methods: Vec<Method>,
    /// Retries allowed as a share of requests over the last 10 s.
    pub budget_percent: u32,
    /// Retries allowed per second on top of the share, so a quiet upstream can still retry.
    pub budget_min_per_sec: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 1,
            methods: vec![
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::PUT,
                Method::DELETE,
            ],
            budget_percent: 20,
            budget_min_per_sec: 3,
        }
    }
}

/// TLS to an upstream's targets (docs/tls.md).
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// Trust anchors; `None` = the Mozilla roots compiled in (webpki-roots).
    pub ca: Option<crate::tls::CaBundle>,
    /// Client certificate presented to the upstream.
    pub client_cert: Option<crate::tls::CertKey>,
    /// The name sent as SNI and verified in the upstream's certificate; `None` = the target host.
    pub server_name: Option<String>,
    /// Offer h2 by ALPN (otherwise HTTP/1.1 only).
    pub http2: bool,
    /// Every file read, for the file watcher.
    pub files: Vec<PathBuf>,
}

/// Equal when the settings and every file's contents are: what a reload compares to keep an
/// upstream's health state.
impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.cache_key() == other.cache_key()
    }
}

impl UpstreamTls {
    /// A key that changes whenever anything here does (file contents included): one pooled
    /// client per distinct key.
    pub fn cache_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        if let Some(ca) = &self.ca {
            h.update(b"ca");
            h.update(ca.digest);
        }
        if let Some(c) = &self.client_cert {
            h.update(b"client");
            h.update(c.digest);
        }
        if let Some(n) = &self.server_name {
            h.update(b"sni");
            h.update(n.as_bytes());
        }
        h.update([u8::from(self.http2)]);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}
