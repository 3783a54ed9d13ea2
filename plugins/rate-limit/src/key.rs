//! What a limit is counted by: the parts of the key (consumer, client IP, route, a header, a
//! context value), how they are joined into one shared-state key, and what happens when a part
//! is absent.

use sha2::{Digest, Sha256};

/// One part of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The `consumer` context key, set by the auth plugin.
    Consumer,
    /// The client address after the gateway's trusted-proxy rule.
    Ip,
    /// The route's name.
    Route,
    /// The first value of a request header (lower-case name). Hashed in the key: header values
    /// are often credentials.
    Header(String),
    /// Any context key set by an earlier plugin.
    Context(String),
}

/// What to do with a request when a key part is absent (no consumer, no header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Refuse the request (403 `rate_limit_key_missing`).
    Deny,
    /// Let the request through without counting it.
    Skip,
    /// Count the absent part as the client IP instead.
    UseIp,
}

impl KeyPart {
    /// `"consumer"`, `"ip"`, `"route"`, `{ header = "NAME" }` or `{ context = "KEY" }`.
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        const EXPECTED: &str = "expected \"consumer\", \"ip\", \"route\", { header = \"NAME\" } \
                                or { context = \"KEY\" }";
        match value {
            serde_json::Value::String(s) => match s.as_str() {
                "consumer" => Ok(KeyPart::Consumer),
                "ip" => Ok(KeyPart::Ip),
                "route" => Ok(KeyPart::Route),
                other => Err(format!("{other:?}: {EXPECTED}")),
            },
            serde_json::Value::Object(map) if map.len() == 1 => {
                let Some((kind, name)) = map.iter().next() else {
                    return Err(EXPECTED.into());
                };
                let name = match name.as_str() {
                    Some(n) if !n.trim().is_empty() => n.trim(),
                    _ => return Err(format!("{kind}: a non-empty name")),
                };
                match kind.as_str() {
                    "header" if is_token(name) => Ok(KeyPart::Header(name.to_ascii_lowercase())),
                    "header" => Err(format!("header: {name:?} is not a header name")),
                    "context" => Ok(KeyPart::Context(name.to_owned())),
                    other => Err(format!("{other:?}: {EXPECTED}")),
                }
            }
            _ => Err(EXPECTED.into()),
        }
    }

    /// The tag naming this part inside the key.
    fn tag(&self) -> String {
        match self {
            KeyPart::Consumer => "consumer".into(),
            KeyPart::Ip => "ip".into(),
            KeyPart::Route => "route".into(),
            KeyPart::Header(name) => format!("header:{name}"),
            KeyPart::Context(name) => format!("context:{}", escape(name)),
        }
    }

    /// How the part reads in a message.
    pub fn describe(&self) -> String {
        match self {
            KeyPart::Consumer => "consumer".into(),
            KeyPart::Ip => "client ip".into(),
            KeyPart::Route => "route".into(),
            KeyPart::Header(name) => format!("header {name}"),
            KeyPart::Context(name) => format!("context {name}"),
        }
    }
}

/// The IPv6 prefix length clients are counted by unless `ipv6_prefix` says otherwise: one
/// subscriber usually gets a whole /64, and picks any address in it at will.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The client address as the limit counts it: an IPv6 address cut to its first `v6_prefix`
/// bits (`2001:db8:1:2:aaaa::1` → `2001:db8:1:2::/64`), so a client cannot get a fresh limit
/// from every address of its prefix; IPv4 (and IPv4-mapped IPv6) as it is; text that is no
/// address unchanged.
pub fn ip_bucket(ip: &str, v6_prefix: u8) -> String {
    let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
        return ip.to_owned();
    };
    match addr.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) if v6_prefix >= 128 => v6.to_string(),
        std::net::IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(v6_prefix))
                .unwrap_or(0);
            format!("{}/{v6_prefix}", std::net::Ipv6Addr::from(bits & mask))
        }
    }
}

/// An HTTP token (RFC 9110), which header names are.
fn is_token(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Where a request's key parts come from (the gateway, or a test).
pub trait Source {
    /// The value of one part; `None` (or empty) when absent. `KeyPart::Ip` is always present.
    fn value(&self, part: &KeyPart) -> Option<String>;
}

/// The result of building a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Built {
    /// Count the request under this key.
    Key(String),
    /// A part is absent and `missing = "skip"`: do not count.
    Skip,
    /// A part is absent and `missing = "deny"`: refuse, naming the part.
    Deny(String),
}

/// Join the parts into one unambiguous key: `tag=value|tag=value`, with `%` and `|` escaped
/// in values and header values replaced by a hash. A part replaced by the IP (`use-ip`) is
/// tagged `ip`, so it shares the IP's count.
pub fn build(parts: &[KeyPart], missing: Missing, source: &impl Source) -> Built {
    let mut out = String::new();
    for part in parts {
        let value = source.value(part).filter(|v| !v.is_empty());
        let (tag, value) = match (value, missing) {
            (Some(v), _) => {
                let v = match part {
                    KeyPart::Header(_) => hash(&v),
                    _ => escape(&v),
                };
                (part.tag(), v)
            }
            (None, Missing::Deny) => return Built::Deny(part.describe()),
            (None, Missing::Skip) => return Built::Skip,
            (None, Missing::UseIp) => (
                KeyPart::Ip.tag(),
                escape(&source.value(&KeyPart::Ip).unwrap_or_default()),
            ),
        };
        if !out.is_empty() {
            out.push('|');
        }
        out.push_str(&tag);
        out.push('=');
        out.push_str(&value);
    }
    Built::Key(out)
}

fn escape(value: &str) -> String {
    if !value.contains(['%', '|', '=']) {
        return value.to_owned();
    }
    value
        .replace('%', "%25")
        .replace('|', "%7C")
        .replace('=', "%3D")
}

/// 128 bits of SHA-256, hex: unguessable, and the same on every gateway.
fn hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake(HashMap<&'static str, &'static str>);

    impl Source for Fake {
        fn value(&self, part: &KeyPart) -> Option<String> {
            let name = match part {
                KeyPart::Consumer => "consumer",
                KeyPart::Ip => "ip",
                KeyPart::Route => "route",
                KeyPart::Header(_) => "header",
                KeyPart::Context(_) => "context",
            };
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }

    fn fake(pairs: &[(&'static str, &'static str)]) -> Fake {
        Fake(pairs.iter().copied().collect())
    }

    fn part(json: &str) -> Result<KeyPart, String> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        KeyPart::parse(&value)
    }

    #[test]
    fn parses_parts() {
        assert_eq!(part(r#""consumer""#), Ok(KeyPart::Consumer));
        assert_eq!(part(r#""ip""#), Ok(KeyPart::Ip));
        assert_eq!(part(r#""route""#), Ok(KeyPart::Route));
        assert_eq!(
            part(r#"{"header": "X-Api-Key"}"#),
            Ok(KeyPart::Header("x-api-key".into()))
        );
        assert_eq!(
            part(r#"{"context": "tenant"}"#),
            Ok(KeyPart::Context("tenant".into()))
        );
        for bad in [
            r#""user""#,
            r#"{"header": ""}"#,
            r#"{"header": "bad name"}"#,
            r#"{"cookie": "a"}"#,
            r#"{"header": "a", "context": "b"}"#,
            "3",
        ] {
            assert!(part(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins_parts_unambiguously() {
        let src = fake(&[
            ("consumer", "a|route=b"),
            ("route", "api"),
            ("ip", "10.0.0.1"),
        ]);
        assert_eq!(
            build(&[KeyPart::Consumer, KeyPart::Route], Missing::Deny, &src),
            Built::Key("consumer=a%7Croute%3Db|route=api".into())
        );
    }

    #[test]
    fn hashes_header_values() {
        let src = fake(&[("header", "secret-key")]);
        let Built::Key(key) = build(&[KeyPart::Header("x-api-key".into())], Missing::Deny, &src)
        else {
            panic!("a key")
        };
        assert!(key.starts_with("header:x-api-key="), "{key}");
        assert!(!key.contains("secret"), "{key}");
        assert_eq!(key.len(), "header:x-api-key=".len() + 32);
    }

    #[test]
    fn ipv6_clients_count_per_prefix() {
        assert_eq!(ip_bucket("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(
            ip_bucket("2001:db8:1:2:ffff:ffff:ffff:ffff", 64),
            ip_bucket("2001:db8:1:2::1", 64)
        );
        assert_ne!(
            ip_bucket("2001:db8:1:3::1", 64),
            ip_bucket("2001:db8:1:2::1", 64)
        );
        assert_eq!(ip_bucket("2001:db8:1:2::1", 48), "2001:db8:1::/48");
        assert_eq!(ip_bucket("2001:db8::1", 128), "2001:db8::1");
        assert_eq!(ip_bucket("::1", 64), "::/64");
        assert_eq!(ip_bucket("192.0.2.7", 64), "192.0.2.7");
        assert_eq!(ip_bucket("::ffff:192.0.2.7", 64), "192.0.2.7");
        assert_eq!(ip_bucket("not-an-ip", 64), "not-an-ip");
    }

    #[test]
    fn missing_parts() {
        let src = fake(&[("ip", "192.0.2.7"), ("consumer", "")]);
        let parts = [KeyPart::Consumer, KeyPart::Route];
        assert_eq!(
            build(&parts, Missing::Deny, &src),
            Built::Deny("consumer".into())
        );
        assert_eq!(build(&parts, Missing::Skip, &src), Built::Skip);
        assert_eq!(
            build(&[KeyPart::Consumer], Missing::UseIp, &src),
            Built::Key("ip=192.0.2.7".into())
        );
        // An IP standing in for a consumer shares the IP's own count.
        assert_eq!(
            build(&[KeyPart::Consumer], Missing::UseIp, &src),
            build(&[KeyPart::Ip], Missing::Deny, &src)
        );
    }
}
