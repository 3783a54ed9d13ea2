//! `[gateway]`: gateway-wide settings, and the header-name patterns of the identity headers
//! stripped before the chain runs.

use std::path::PathBuf;

use ipnet::IpNet;

use crate::signing::TrustedKey;

/// Where `module = "NAME"` finds built-in plugins, relative to the config file.
pub const DEFAULT_PLUGIN_DIR: &str = "plugins/target/wasm32-wasip2/release";

/// Gateway-wide settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where built-in plugin modules (`module = "headers"`) are found.
    pub plugin_dir: PathBuf,
    /// Where compiled plugins are cached (`<sha256>.cwasm`).
    pub cache_dir: PathBuf,
    /// Reload when the config file or a plugin module changes.
    pub watch: bool,
    /// Peers whose `X-Forwarded-For` is believed (see `proxy::client` for the rule).
    pub trusted_proxies: Vec<IpNet>,
    /// Request headers removed before the chain runs, so only plugins can set them.
    pub strip_identity_headers: Vec<HeaderPattern>,
    /// Refuse (400) requests with a header name containing `_`.
    pub reject_underscore_headers: bool,
    /// Keys whose signatures on plugin modules are believed (`trusted_keys`, docs/rollout.md).
    pub trusted_keys: Vec<TrustedKey>,
    /// Refuse, at load and at reload, every module without a valid signature by a trusted key.
    pub require_signatures: bool,
}

/// The default of `[gateway] strip_identity_headers`: headers that carry an identity some
/// upstream may believe, which only a plugin (after authenticating) may set.
pub const DEFAULT_IDENTITY_HEADERS: &[&str] = &[
    "x-consumer-*",
    "x-authenticated-*",
    "remote-user",
    "x-remote-user",
    "x-user-id",
    "x-client-cert*",
];

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            plugin_dir: PathBuf::from(DEFAULT_PLUGIN_DIR),
            cache_dir: PathBuf::from(".tollgate-cache"),
            watch: true,
            trusted_proxies: Vec::new(),
            strip_identity_headers: DEFAULT_IDENTITY_HEADERS
                .iter()
                .filter_map(|p| HeaderPattern::parse(p).ok())
                .collect(),
            reject_underscore_headers: true,
            trusted_keys: Vec::new(),
            require_signatures: false,
        }
    }
}

/// A header-name pattern: an exact lower-case name, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderPattern {
    /// This name exactly.
    Exact(String),
    /// Every name starting with this (the pattern without its `*`).
    Prefix(String),
}

impl HeaderPattern {
    /// Parse `name` or `prefix*` (case-insensitive; stored lower case). The name or prefix must be
    /// non-empty and made of header-name characters; `*` may only come last.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let lower = pattern.to_ascii_lowercase();
        let (stem, prefix) = match lower.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (lower.as_str(), false),
        };
        if stem.is_empty()
            || stem.contains('*')
            || http::HeaderName::from_bytes(stem.as_bytes()).is_err()
        {
            return Err(format!(
                "`{pattern}` is not a header name or a `prefix*` pattern"
            ));
        }
        Ok(if prefix {
            HeaderPattern::Prefix(stem.to_owned())
        } else {
            HeaderPattern::Exact(stem.to_owned())
        })
    }

    /// Does this lower-case header name match?
    pub fn matches(&self, name: &str) -> bool {
        match self {
            HeaderPattern::Exact(n) => name == n,
            HeaderPattern::Prefix(p) => name.starts_with(p.as_str()),
        }
    }
}
