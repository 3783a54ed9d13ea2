//! `[gateway]`: module and cache directories, file watching, trusted proxies and the identity
//! headers stripped before the chain runs.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Validator;
use crate::config::model::{DEFAULT_PLUGIN_DIR, GatewaySettings, HeaderPattern};
use crate::config::raw::RawGateway;
use crate::signing::TrustedKey;

const DEFAULT_CACHE_DIR: &str = ".tollgate-cache";

impl Validator<'_> {
    /// `[gateway]`, every setting at its default when the section is absent.
    pub(super) fn gateway(&mut self, value: Option<toml::Value>) -> GatewaySettings {
        let gateway = match value {
            Some(v) => self.de::<RawGateway>("gateway", v).unwrap_or_default(),
            None => RawGateway::default(),
        };
        let defaults = GatewaySettings::default();
        let trusted_proxies = self.trusted_proxies(gateway.trusted_proxies.unwrap_or_default());
        let strip_identity_headers = match gateway.strip_identity_headers {
            Some(patterns) => self.header_patterns(patterns),
            None => defaults.strip_identity_headers,
        };
        let trusted_keys = self.trusted_keys(gateway.trusted_keys.unwrap_or_default());
        let require_signatures = gateway.require_signatures.unwrap_or(false);
        if require_signatures && trusted_keys.is_empty() {
            self.issues.push(
                "gateway.require_signatures",
                "needs at least one key in `trusted_keys`",
            );
        }
        GatewaySettings {
            trusted_keys,
            require_signatures,
            plugin_dir: self
                .base
                .join(gateway.plugin_dir.as_deref().unwrap_or(DEFAULT_PLUGIN_DIR)),
            cache_dir: self
                .base
                .join(gateway.cache_dir.as_deref().unwrap_or(DEFAULT_CACHE_DIR)),
            watch: gateway.watch.unwrap_or(true),
            trusted_proxies,
            strip_identity_headers,
            reject_underscore_headers: gateway
                .reject_underscore_headers
                .unwrap_or(defaults.reject_underscore_headers),
        }
    }

    /// `trusted_proxies = ["10.0.0.0/8", "::1/128", "192.0.2.7"]`: CIDRs, or single addresses.
    fn trusted_proxies(&mut self, raw: Vec<String>) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, cidr) in raw.iter().enumerate() {
            let parsed = cidr
                .parse::<IpNet>()
                .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                // `10.1.2.3/8` means `10.0.0.0/8`; store it in that form.
                Ok(net) => out.push(net.trunc()),
                Err(_) => self.issues.push(
                    format!("gateway.trusted_proxies[{i}]"),
                    format!(
                        "`{cidr}` is not an IP network (e.g. \"10.0.0.0/8\", \"::1/128\") or address"
                    ),
                ),
            }
        }
        out
    }

    /// `trusted_keys = ["keys/ops.pub", "-----BEGIN PUBLIC KEY-----..."]`: Ed25519 public keys in
    /// PEM (SPKI), each a file relative to the config or the PEM text itself.
    fn trusted_keys(&mut self, raw: Vec<String>) -> Vec<TrustedKey> {
        let mut out = Vec::new();
        for (i, entry) in raw.iter().enumerate() {
            let path = format!("gateway.trusted_keys[{i}]");
            let pem = if entry.trim_start().starts_with("-----BEGIN") {
                entry.clone()
            } else {
                let file = self.base.join(entry);
                match std::fs::read_to_string(&file) {
                    Ok(text) => text,
                    Err(e) => {
                        self.issues.push(
                            path,
                            format!("cannot read key file `{}`: {e}", file.display()),
                        );
                        continue;
                    }
                }
            };
            match TrustedKey::from_pem(&pem) {
                Ok(key) => out.push(key),
                Err(why) => self.issues.push(path, why),
            }
        }
        out
    }

    /// `strip_identity_headers = ["x-user-id", "x-consumer-*"]`: names, or `prefix*` patterns.
    fn header_patterns(&mut self, raw: Vec<String>) -> Vec<HeaderPattern> {
        let mut out = Vec::new();
        for (i, pattern) in raw.iter().enumerate() {
            match HeaderPattern::parse(pattern) {
                Ok(p) => out.push(p),
                Err(why) => self
                    .issues
                    .push(format!("gateway.strip_identity_headers[{i}]"), why),
            }
        }
        out
    }
}
