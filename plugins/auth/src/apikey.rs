//! API keys: stored as SHA-256 hashes, compared in constant time.
//!
//! SHA-256 (not a slow password hash) is right here because API keys are long random strings:
//! with 128+ bits of entropy no amount of hashing speed makes guessing feasible, and a fast hash
//! keeps the per-request cost at about a microsecond. Passwords chosen by people are different:
//! those go through bcrypt (see `basic`).

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The SHA-256 of a key.
pub type KeyHash = [u8; 32];

/// The hash of a presented key.
pub fn hash_key(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// A configured hash: 64 hex digits, optionally prefixed `sha256:`.
pub fn parse_hash(text: &str) -> Result<KeyHash, String> {
    let hex = text.trim();
    let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            "expected the SHA-256 of the key as 64 hex digits (see `tollgate key hash`)".into(),
        );
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).ok_or("bad hex")?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| "bad hex")?;
    }
    Ok(out)
}

/// The index of the entry whose hash equals `presented`, comparing against every entry in
/// constant time (no early exit, no data-dependent branch), so the timing says nothing about
/// which entry, if any, matched or how many bytes agreed.
pub fn find_constant_time(presented: &KeyHash, hashes: &[KeyHash]) -> Option<usize> {
    let mut found = subtle::Choice::from(0u8);
    let mut index = 0u64;
    for (i, hash) in hashes.iter().enumerate() {
        let hit = hash.ct_eq(presented);
        index.conditional_assign(&(i as u64), hit);
        found |= hit;
    }
    bool::from(found).then_some(index as usize)
}

/// A key managed by a control plane: the gateway keeps each live key's identity in this
/// plugin's state under `control-key:<sha256 hex>` (removed on revocation, with the key's expiry
/// as TTL). The lookup is by hash, so it reveals nothing about other keys; `not_after_ms` is
/// checked again here in case the state's expiry is coarser.
pub fn control_lookup(
    presented: &KeyHash,
    now_ms: u64,
) -> Result<Option<crate::config::Identity>, String> {
    let hex: String = presented.iter().map(|b| format!("{b:02x}")).collect();
    let Some(text) = tollgate_sdk::state::get(&format!("control-key:{hex}"))? else {
        return Ok(None);
    };
    Ok(parse_control_entry(&text, now_ms))
}

/// The identity in a control-plane key entry, unless it is malformed or past `not_after_ms`.
fn parse_control_entry(text: &str, now_ms: u64) -> Option<crate::config::Identity> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if let Some(t) = v.get("not_after_ms").and_then(serde_json::Value::as_u64)
        && t <= now_ms
    {
        return None;
    }
    let roles = v.get("roles")?.as_array()?;
    Some(crate::config::Identity {
        consumer: v.get("consumer")?.as_str()?.to_owned(),
        roles: roles
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect(),
        plan: v.get("plan").and_then(|p| p.as_str()).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_parse() {
        let h = hash_key("test");
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(parse_hash(hex), Ok(h));
        assert_eq!(parse_hash(&format!("sha256:{hex}")), Ok(h));
        assert_eq!(parse_hash(&hex.to_uppercase()), Ok(h));
        assert!(parse_hash("abc").is_err());
        assert!(parse_hash(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn control_entries_parse_and_expire() {
        let entry = r#"{"consumer":"ann","roles":["ops"],"plan":"gold","not_after_ms":2000}"#;
        let id = parse_control_entry(entry, 1000).expect("valid before not_after");
        assert_eq!(
            (id.consumer.as_str(), id.plan.as_deref()),
            ("ann", Some("gold"))
        );
        assert_eq!(id.roles, vec!["ops".to_owned()]);
        assert!(parse_control_entry(entry, 2000).is_none(), "expired");
        let open = r#"{"consumer":"bo","roles":[],"plan":null,"not_after_ms":null}"#;
        assert!(parse_control_entry(open, u64::MAX).is_some());
        assert!(parse_control_entry("not json", 0).is_none());
    }

    #[test]
    fn constant_time_lookup() {
        let hashes = [hash_key("a"), hash_key("b"), hash_key("c")];
        assert_eq!(find_constant_time(&hash_key("a"), &hashes), Some(0));
        assert_eq!(find_constant_time(&hash_key("c"), &hashes), Some(2));
        assert_eq!(find_constant_time(&hash_key("d"), &hashes), None);
        assert_eq!(find_constant_time(&hash_key("a"), &[]), None);
        // A hash differing only in its last byte is not a match.
        let mut near = hash_key("b");
        near[31] ^= 1;
        assert_eq!(find_constant_time(&near, &hashes), None);
    }
}
