//! `mtls`: client certificates, by fingerprint, subject or SAN, and the identity each stands
//! for.

use super::identity::check_identity;
use super::raw::RawMtls;
use super::settings::{CertIdentity, Identity, MtlsSettings};

/// A SHA-256 fingerprint in lower-case hex without separators, if `text` is one.
pub fn normalise_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// `mtls`: at least one identity, each matching by exactly one of fingerprint, subject, SAN.
pub(super) fn validate_mtls(raw: RawMtls, e: &mut Vec<String>) -> MtlsSettings {
    if raw.identities.is_empty() {
        e.push("mtls.identities: at least one identity is needed".into());
    }
    let identities = raw
        .identities
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("mtls.identities[{i}]");
            let given = [
                c.fingerprint.is_some(),
                c.subject.is_some(),
                c.san.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if given != 1 {
                e.push(format!(
                    "{at}: give exactly one of `fingerprint`, `subject`, `san`"
                ));
            }
            let fingerprint = c.fingerprint.as_deref().and_then(|f| {
                let n = normalise_fingerprint(f);
                if n.is_none() {
                    e.push(format!(
                        "{at}.fingerprint: expected 64 hex digits (SHA-256), colons allowed"
                    ));
                }
                n
            });
            check_identity(&at, &c.consumer, &c.roles, c.plan.as_deref(), e);
            CertIdentity {
                fingerprint,
                subject: c.subject,
                san: c.san,
                identity: Identity {
                    consumer: c.consumer,
                    roles: c.roles,
                    plan: c.plan,
                },
            }
        })
        .collect();
    MtlsSettings { identities }
}
