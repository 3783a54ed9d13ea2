//! The identity in a client certificate, as plugins see it in the request context.
//!
//! - `tls.client.subject`: the subject DN as an RFC 4514 string (`CN=billing,O=Acme`: last RDN
//!   first, `,` between RDNs, `+` inside one, special characters escaped with `\`).
//! - `tls.client.san`: the subject alternative names, comma-separated, without type prefixes
//!   (DNS names, e-mail addresses, URIs, IP addresses in text form); a `,` inside a value is
//!   written `%2C`.
//! - `tls.client.fingerprint`: SHA-256 of the certificate's DER, lower-case hex, no colons.

use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::x509::X509Name;

/// Context key: the verified client certificate's subject DN.
pub const CONTEXT_SUBJECT: &str = "tls.client.subject";
/// Context key: its subject alternative names, comma-separated.
pub const CONTEXT_SAN: &str = "tls.client.san";
/// Context key: SHA-256 of its DER, lower-case hex.
pub const CONTEXT_FINGERPRINT: &str = "tls.client.fingerprint";

/// A verified client certificate's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// RFC 4514 subject DN.
    pub subject: String,
    /// Subject alternative names.
    pub sans: Vec<String>,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
}

impl ClientIdentity {
    /// Read the identity from a (verified) leaf certificate. A certificate that cannot be
    /// parsed still has a fingerprint.
    pub fn from_der(cert: &CertificateDer<'_>) -> Self {
        let fingerprint = hex(&Sha256::digest(cert.as_ref()));
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
            return Self {
                subject: String::new(),
                sans: Vec::new(),
                fingerprint,
            };
        };
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = parsed.subject_alternative_name() {
            for name in &ext.value.general_names {
                let text = match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        (*s).to_owned()
                    }
                    GeneralName::IPAddress(bytes) => match ip_from(bytes) {
                        Some(ip) => ip.to_string(),
                        None => continue,
                    },
                    _ => continue,
                };
                sans.push(text.replace(',', "%2C"));
            }
        }
        Self {
            subject: rfc4514(parsed.subject()),
            sans,
            fingerprint,
        }
    }

    /// The context entries plugins see.
    pub fn context(&self) -> [(&'static str, String); 3] {
        [
            (CONTEXT_SUBJECT, self.subject.clone()),
            (CONTEXT_SAN, self.sans.join(",")),
            (CONTEXT_FINGERPRINT, self.fingerprint.clone()),
        ]
    }
}

/// The DNS subject alternative names of a certificate, lower case (for SNI selection).
pub fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(ext)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) => Some(s.trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// RFC 4514: RDNs in reverse order, joined by `,`; multi-valued RDNs joined by `+`; attribute
/// types by their short name when known, else the dotted OID; values that are not strings as
/// `#` + hex of their DER value.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<&x509_parser::x509::RelativeDistinguishedName<'_>> = name.iter_rdn().collect();
    rdns.iter()
        .rev()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type();
                    let key = oid2abbrev(oid, oid_registry())
                        .map(str::to_owned)
                        .unwrap_or_else(|_| oid.to_id_string());
                    let value = match atv.as_str() {
                        Ok(s) => escape(s),
                        Err(_) => format!("#{}", hex(atv.attr_value().data)),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_san_and_fingerprint_from_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![
            "billing.internal".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("params");
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://acme/billing,x".try_into().expect("uri"),
        ));
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc.");
        dn.push(rcgen::DnType::CommonName, "billing");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).expect("cert");
        let id = ClientIdentity::from_der(cert.der());
        assert_eq!(id.subject, "CN=billing,O=Acme\\, Inc.");
        assert_eq!(
            id.sans,
            ["billing.internal", "127.0.0.1", "spiffe://acme/billing%2Cx"]
        );
        assert_eq!(id.fingerprint, hex(&Sha256::digest(cert.der().as_ref())));
        assert_eq!(id.fingerprint.len(), 64);
    }

    #[test]
    fn escaping_follows_rfc4514() {
        assert_eq!(escape("#a b "), "\\#a b\\ ");
        assert_eq!(escape("a+b;c"), "a\\+b\\;c");
    }
}
