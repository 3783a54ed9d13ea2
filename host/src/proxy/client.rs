//! Who the client is, and what it may not claim: one rule for the client address (trusted proxies
//! and `X-Forwarded-For`), identity headers removed before any plugin runs, and header names with
//! underscores refused.
//!
//! ## The client address
//! The client address is the TCP peer, unless the peer is in `trusted_proxies`. Then the
//! `X-Forwarded-For` chain (every `X-Forwarded-For` header, in order, split on `,`) is walked from
//! the right: each address that is itself trusted is skipped, and the first untrusted one is the
//! client. If every address is trusted, the left-most one is the client. An entry that is not a
//! bare IP address (`1.2.3.4`, `2001:db8::1`) stops the walk, and the last good hop (the trusted
//! address just to its right, or the peer) is the client: nothing left of a forged or garbled
//! entry is believed.
//!
//! This address is `RequestState::client_ip`: what plugins read with `client-ip()`, what the log
//! phase reports, and what an IP filter decides on.
//!
//! ## The outgoing `X-Forwarded-For`
//! From a trusted peer, the chain it sent is kept and the peer appended; from any other peer, the
//! client's header is replaced by the peer's address.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

use super::error::ProxyError;
use super::headers::X_FORWARDED_FOR;
use crate::config::{GatewaySettings, HeaderPattern};

/// The per-table client policy, from `[gateway]`.
#[derive(Debug, Clone, Default)]
pub struct ClientPolicy {
    trusted: Vec<IpNet>,
    identity_headers: Vec<HeaderPattern>,
    reject_underscores: bool,
}

/// What the gateway learned about where a request came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The TCP peer.
    pub peer: IpAddr,
    /// The client address by the rule above.
    pub client_ip: IpAddr,
    /// The `X-Forwarded-For` chain a trusted peer sent (joined with `, `), to extend upstream.
    pub forwarded_chain: Option<String>,
}

impl ClientPolicy {
    /// The policy of these settings.
    pub fn new(settings: &GatewaySettings) -> Self {
        Self {
            trusted: settings.trusted_proxies.clone(),
            identity_headers: settings.strip_identity_headers.clone(),
            reject_underscores: settings.reject_underscore_headers,
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Work out the client address from the peer and the request's `X-Forwarded-For`.
    pub fn origin(&self, peer: IpAddr, headers: &HeaderMap) -> Origin {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return Origin {
                peer,
                client_ip: peer,
                forwarded_chain: None,
            };
        }
        let values: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let entries: Vec<&str> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Ok(hop) = entry.parse::<IpAddr>() else {
                break;
            };
            client = hop.to_canonical();
            if !self.is_trusted(client) {
                break;
            }
        }
        Origin {
            peer,
            client_ip: client,
            forwarded_chain: (!entries.is_empty()).then(|| entries.join(", ")),
        }
    }

    /// Refuse a header name with `_` when the policy says so.
    pub fn check_header_names(&self, headers: &HeaderMap) -> Result<(), ProxyError> {
        if !self.reject_underscores {
            return Ok(());
        }
        match headers.keys().find(|name| name.as_str().contains('_')) {
            Some(name) => Err(ProxyError::InvalidHeader {
                name: name.as_str().to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Remove the identity headers a client may not set (only plugins may).
    pub fn strip_identity_headers(&self, headers: &mut HeaderMap) {
        if self.identity_headers.is_empty() {
            return;
        }
        let doomed: Vec<_> = headers
            .keys()
            .filter(|name| {
                self.identity_headers
                    .iter()
                    .any(|p| p.matches(name.as_str()))
            })
            .cloned()
            .collect();
        for name in doomed {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn policy(trusted: &[&str]) -> ClientPolicy {
        let settings = GatewaySettings {
            trusted_proxies: trusted.iter().filter_map(|t| t.parse().ok()).collect(),
            ..GatewaySettings::default()
        };
        ClientPolicy::new(&settings)
    }

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(X_FORWARDED_FOR.clone(), HeaderValue::from_static(v));
        }
        headers
    }

    fn client(p: &ClientPolicy, peer: &str, values: &[&'static str]) -> String {
        let peer: IpAddr = peer.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        p.origin(peer, &xff(values)).client_ip.to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = policy(&["10.0.0.0/8"]);
        assert_eq!(client(&p, "203.0.113.9", &["1.2.3.4"]), "203.0.113.9");
        let origin = p.origin(IpAddr::from([203, 0, 113, 9]), &xff(&["1.2.3.4"]));
        assert!(origin.forwarded_chain.is_none());
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let p = policy(&["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(client(&p, "127.0.0.1", &["1.2.3.4, 5.6.7.8"]), "5.6.7.8");
        assert_eq!(client(&p, "127.0.0.1", &["1.2.3.4, 10.0.0.1"]), "1.2.3.4");
        assert_eq!(client(&p, "127.0.0.1", &["1.2.3.4", "10.0.0.1"]), "1.2.3.4");
        assert_eq!(client(&p, "127.0.0.1", &[]), "127.0.0.1");
    }

    #[test]
    fn all_trusted_gives_the_left_most() {
        let p = policy(&["10.0.0.0/8", "127.0.0.1/32"]);
        assert_eq!(client(&p, "127.0.0.1", &["10.0.0.2, 10.0.0.1"]), "10.0.0.2");
    }

    #[test]
    fn a_malformed_entry_stops_the_walk_at_the_last_good_hop() {
        let p = policy(&["10.0.0.0/8", "127.0.0.1/32"]);
        assert_eq!(
            client(&p, "127.0.0.1", &["1.2.3.4, junk, 10.0.0.1"]),
            "10.0.0.1"
        );
        assert_eq!(client(&p, "127.0.0.1", &["1.2.3.4:80"]), "127.0.0.1");
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let p = policy(&["::1/128", "10.0.0.0/8"]);
        assert_eq!(client(&p, "::1", &["2001:db8::7, 10.0.0.1"]), "2001:db8::7");
        assert_eq!(client(&p, "::ffff:10.0.0.3", &["9.9.9.9"]), "9.9.9.9");
    }

    #[test]
    fn identity_headers_and_underscores() {
        let p = policy(&[]);
        let mut headers = HeaderMap::new();
        for name in [
            "x-consumer-id",
            "x-authenticated-userid",
            "remote-user",
            "x-client-cert-sha",
            "x-user-id",
            "x-kept",
        ] {
            headers.insert(
                http::HeaderName::from_static(name),
                HeaderValue::from_static("v"),
            );
        }
        p.strip_identity_headers(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(p.check_header_names(&headers).is_ok());
        headers.insert("x_consumer", HeaderValue::from_static("v"));
        assert!(matches!(
            p.check_header_names(&headers),
            Err(ProxyError::InvalidHeader { name }) if name == "x_consumer"
        ));
    }
}
