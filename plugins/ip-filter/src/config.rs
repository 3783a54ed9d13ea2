//! The `ip-filter` config as written (raw serde types), validated into [`Filter`], and the
//! decision. Plain Rust with no host calls: unit-tested natively.

use std::net::IpAddr;

use serde::Deserialize;

use crate::cidr::Network;

/// The `[plugins.NAME.config]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
}

/// The validated lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// When set, only these networks get through.
    pub allow: Option<Vec<Network>>,
    /// These networks never get through.
    pub deny: Vec<Network>,
}

/// Why a client was refused (for the log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// It is in this deny network.
    Denied(Network),
    /// An allow list is set and it is in none of its networks.
    NotAllowed,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::Denied(net) => write!(f, "in deny network {net}"),
            Denial::NotAllowed => f.write_str("not in the allow list"),
        }
    }
}

fn parse_list(field: &str, entries: &[String], errors: &mut Vec<String>) -> Vec<Network> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            Network::parse(entry)
                .map_err(|e| errors.push(format!("{field}[{i}]: {e}")))
                .ok()
        })
        .collect()
}

/// Validate a parsed config, naming every bad entry.
pub fn validate(raw: RawConfig) -> Result<Filter, String> {
    let mut errors = Vec::new();
    let allow = raw.allow.map(|list| {
        if list.is_empty() {
            errors.push(
                "allow: empty list would refuse every client; remove `allow` to let every \
                 client not denied through"
                    .to_owned(),
            );
        }
        parse_list("allow", &list, &mut errors)
    });
    let deny = parse_list("deny", &raw.deny, &mut errors);
    if allow.is_none() && raw.deny.is_empty() {
        errors.push("set `allow`, `deny` or both (lists of CIDR networks)".to_owned());
    }
    if errors.is_empty() {
        Ok(Filter { allow, deny })
    } else {
        Err(errors.join("; "))
    }
}

impl Filter {
    /// Deny wins; with an allow list, anything outside it is refused.
    pub fn decide(&self, ip: IpAddr) -> Result<(), Denial> {
        if let Some(net) = self.deny.iter().find(|n| n.contains(ip)) {
            return Err(Denial::Denied(*net));
        }
        match &self.allow {
            Some(allow) if !allow.iter().any(|n| n.contains(ip)) => Err(Denial::NotAllowed),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Filter, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string())?;
        validate(raw)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn deny_wins_and_allow_list_is_exclusive() {
        let f = parse(serde_json::json!({
            "allow": ["10.0.0.0/8", "::1", "2001:db8::/32"],
            "deny": ["10.6.0.0/16"],
        }))
        .expect("valid");
        assert_eq!(f.decide(ip("10.1.2.3")), Ok(()));
        assert_eq!(f.decide(ip("::ffff:10.1.2.3")), Ok(()));
        assert_eq!(f.decide(ip("::1")), Ok(()));
        assert_eq!(f.decide(ip("2001:db8::5")), Ok(()));
        assert!(matches!(f.decide(ip("10.6.0.1")), Err(Denial::Denied(_))));
        assert!(matches!(
            f.decide(ip("::ffff:10.6.0.1")),
            Err(Denial::Denied(_))
        ));
        assert_eq!(f.decide(ip("127.0.0.1")), Err(Denial::NotAllowed));
        assert_eq!(f.decide(ip("2001:db9::1")), Err(Denial::NotAllowed));
    }

    #[test]
    fn deny_only_lets_everything_else_through() {
        let f = parse(serde_json::json!({ "deny": ["127.0.0.0/8", "::1"] })).expect("valid");
        assert!(f.decide(ip("127.0.0.1")).is_err());
        assert!(f.decide(ip("::ffff:127.0.0.1")).is_err());
        assert!(f.decide(ip("::1")).is_err());
        assert_eq!(f.decide(ip("192.0.2.1")), Ok(()));
    }

    #[test]
    fn every_bad_entry_is_named() {
        let err = parse(serde_json::json!({
            "allow": ["10.0.0.0/8", "10.0.0.1/8", "nope"],
            "deny": ["::/200"],
        }))
        .expect_err("must fail");
        for needle in [
            "allow[1]: \"10.0.0.1/8\" has host bits set",
            "allow[2]: \"nope\" is not an IP address",
            "deny[0]: \"::/200\": prefix length must be a number from 0 to 128",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn empty_configs_are_refused() {
        let err = parse(serde_json::json!({})).expect_err("must fail");
        assert!(err.contains("set `allow`, `deny` or both"), "{err}");
        let err = parse(serde_json::json!({ "allow": [] })).expect_err("must fail");
        assert!(err.contains("allow: empty list"), "{err}");
        let err = parse(serde_json::json!({ "deny": "10.0.0.0/8" })).expect_err("must fail");
        assert!(err.starts_with("invalid config:"), "{err}");
        let err = parse(serde_json::json!({ "allowed": [] })).expect_err("must fail");
        assert!(err.contains("unknown field `allowed`"), "{err}");
    }
}
