//! IPv4 and IPv6 networks in CIDR notation. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is IPv4, both
//! for client addresses and for networks written that way (`::ffff:10.0.0.0/104` is
//! `10.0.0.0/8`). Plain Rust with no host calls: unit-tested natively.

use std::net::{IpAddr, Ipv6Addr};

/// A network: an address with its host bits zero, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// IPv4, prefix 0..=32.
    V4 {
        /// Network address.
        addr: u32,
        /// Prefix length.
        prefix: u8,
    },
    /// IPv6 (never IPv4-mapped), prefix 0..=128.
    V6 {
        /// Network address.
        addr: u128,
        /// Prefix length.
        prefix: u8,
    },
}

/// The IPv4-mapped block `::ffff:0:0/96`.
const MAPPED_PREFIX: u128 = 0xffff_u128 << 32;
const MAPPED_MASK: u128 = !0u128 << 32;

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// An address with IPv4-mapped IPv6 read as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl Network {
    /// Parse `ADDR/PREFIX` or a bare `ADDR` (one host). Host bits must be zero
    /// (`10.0.0.1/8` is refused: did you mean `10.0.0.0/8`?).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "{text:?}: prefix length must be a number from 0 to {max}"
                    ));
                }
            },
        };
        let network = match addr {
            IpAddr::V4(v4) => {
                let addr = u32::from(v4);
                if addr & !mask_v4(prefix) != 0 {
                    let fixed = std::net::Ipv4Addr::from(addr & mask_v4(prefix));
                    return Err(format!(
                        "{text:?} has host bits set; did you mean \"{fixed}/{prefix}\"?"
                    ));
                }
                Network::V4 { addr, prefix }
            }
            IpAddr::V6(v6) => {
                let addr = u128::from(v6);
                if addr & !mask_v6(prefix) != 0 {
                    let fixed = Ipv6Addr::from(addr & mask_v6(prefix));
                    return Err(format!(
                        "{text:?} has host bits set; did you mean \"{fixed}/{prefix}\"?"
                    ));
                }
                if addr & MAPPED_MASK == MAPPED_PREFIX && prefix > 0 {
                    if prefix < 96 {
                        return Err(format!(
                            "{text:?}: an IPv4-mapped network needs a prefix of at least /96; \
                             write the IPv4 network instead"
                        ));
                    }
                    // The low 32 bits are the IPv4 address.
                    Network::V4 {
                        addr: (addr & u128::from(u32::MAX)) as u32,
                        prefix: prefix - 96,
                    }
                } else {
                    Network::V6 { addr, prefix }
                }
            }
        };
        Ok(network)
    }

    /// Whether the network holds this address (IPv4-mapped addresses are read as IPv4; an IPv6
    /// network never holds an IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical(ip)) {
            (Network::V4 { addr, prefix }, IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(*prefix) == *addr
            }
            (Network::V6 { addr, prefix }, IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(*prefix) == *addr
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Network::V4 { addr, prefix } => {
                write!(f, "{}/{prefix}", std::net::Ipv4Addr::from(*addr))
            }
            Network::V6 { addr, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(*addr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        Network::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ipv4() {
        let n = net("127.0.0.0/8");
        assert!(n.contains(ip("127.0.0.1")));
        assert!(n.contains(ip("127.255.255.255")));
        assert!(!n.contains(ip("128.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(net("10.1.2.3").contains(ip("10.1.2.3")));
        assert!(!net("10.1.2.3").contains(ip("10.1.2.4")));
        assert!(net("192.168.1.128/25").contains(ip("192.168.1.200")));
        assert!(!net("192.168.1.128/25").contains(ip("192.168.1.100")));
        assert_eq!(net(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn ipv6() {
        assert!(net("::1").contains(ip("::1")));
        assert!(!net("::1").contains(ip("::2")));
        let n = net("2001:db8::/32");
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(net("::/0").contains(ip("fe80::1")));
        assert!(
            !net("::/0").contains(ip("1.2.3.4")),
            "IPv6 networks hold no IPv4"
        );
        assert!(!net("::1").contains(ip("127.0.0.1")));
    }

    #[test]
    fn ipv4_mapped_is_ipv4() {
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(!net("127.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
        assert_eq!(
            net("::ffff:10.0.0.0/104"),
            Network::V4 {
                addr: 0x0a00_0000,
                prefix: 8
            }
        );
        assert!(net("::ffff:1.2.3.4").contains(ip("1.2.3.4")));
        assert!(net("::ffff:0:0/96").contains(ip("9.9.9.9")));
        assert!(!net("::ffff:0:0/96").contains(ip("::1")));
    }

    #[test]
    fn invalid_networks_are_explained() {
        for (text, needle) in [
            ("", "is not an IP address"),
            ("10.0.0", "is not an IP address"),
            ("localhost", "is not an IP address"),
            ("fe80::1%eth0", "is not an IP address"),
            ("10.0.0.0/33", "from 0 to 32"),
            ("10.0.0.0/", "from 0 to 32"),
            ("10.0.0.0/+8", "from 0 to 32"),
            ("::/129", "from 0 to 128"),
            ("10.0.0.1/8", "did you mean \"10.0.0.0/8\""),
            ("2001:db8::1/32", "did you mean \"2001:db8::/32\""),
            ("::ffff:0:0/95", "host bits"),
            ("::ffff:0.0.0.0/80", "host bits"),
        ] {
            let err = Network::parse(text).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
