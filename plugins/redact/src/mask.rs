//! Mask styles: what a value found by a rule is replaced with.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How a value is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The whole value becomes the replacement text (`[REDACTED]`).
    Full,
    /// Only the last few characters are kept: `****1234`.
    Partial,
    /// A keyed hash (HMAC-SHA256) of the value, so records stay joinable without the value.
    Hash,
}

impl Style {
    /// Parse a style name from the config.
    pub fn parse(at: &str, name: &str, errors: &mut Vec<String>) -> Option<Style> {
        match name {
            "full" => Some(Style::Full),
            "partial" => Some(Style::Partial),
            "hash" => Some(Style::Hash),
            other => {
                errors.push(format!(
                    "{at}: unknown style {other:?} (expected \"full\", \"partial\" or \"hash\")"
                ));
                None
            }
        }
    }
}

/// The stars that stand for the hidden part of a partially masked value. Always four, so the
/// mask does not tell the value's length.
const STARS: &str = "****";

/// Bytes of the HMAC kept in a hash mask (128 bits, 32 hex digits).
const HASH_BYTES: usize = 16;

/// Applies a [`Style`] to a value.
#[derive(Clone)]
pub struct Masker {
    replacement: String,
    keep: usize,
    key: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Masker")
            .field("replacement", &self.replacement)
            .field("keep", &self.keep)
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Masker {
    /// A masker with its replacement text, the characters kept by `partial`, and the HMAC key
    /// (required for `hash`; checked by the config).
    pub fn new(replacement: String, keep: usize, key: Option<&[u8]>) -> Self {
        let key = key.and_then(|k| Hmac::<Sha256>::new_from_slice(k).ok());
        Self {
            replacement,
            keep,
            key,
        }
    }

    /// The masked form of `value`. `canonical` is the value as the hash and the partial mask
    /// should see it (card digits without separators, a lower-cased e-mail address), so the
    /// same card written two ways hashes the same.
    pub fn mask(&self, style: Style, canonical: &str) -> String {
        let mut out = String::new();
        self.mask_into(style, canonical, &mut out);
        out
    }

    /// [`Masker::mask`], appended to `out`.
    pub fn mask_into(&self, style: Style, canonical: &str, out: &mut String) {
        match style {
            Style::Full => out.push_str(&self.replacement),
            Style::Partial => self.partial(canonical, out),
            Style::Hash => self.hash(canonical, out),
        }
    }

    fn partial(&self, value: &str, out: &mut String) {
        out.push_str(STARS);
        let ascii = value.is_ascii();
        let count = if ascii {
            value.len()
        } else {
            value.chars().count()
        };
        // Keep the tail only when at least as much is hidden as shown.
        if self.keep == 0 || count < self.keep.saturating_mul(2) {
            return;
        }
        let tail = if ascii {
            value.get(count - self.keep..)
        } else {
            value
                .char_indices()
                .nth(count - self.keep)
                .and_then(|(at, _)| value.get(at..))
        };
        out.push_str(tail.unwrap_or(""));
    }

    fn hash(&self, value: &str, out: &mut String) {
        let Some(key) = &self.key else {
            // The config refuses `hash` without a key; never fall back to the value.
            out.push_str(&self.replacement);
            return;
        };
        let mut mac = key.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = [0u8; HASH_BYTES * 2];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest.iter()) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        out.push_str("hmac:");
        out.push_str(std::str::from_utf8(&hex).unwrap_or(""));
    }
}

/// Lower-case hexadecimal digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    fn masker() -> Masker {
        Masker::new("[REDACTED]".into(), 4, Some(b"0123456789abcdef-test-key"))
    }

    #[test]
    fn full_replaces_everything() {
        assert_eq!(
            masker().mask(Style::Full, "alice@example.com"),
            "[REDACTED]"
        );
    }

    #[test]
    fn partial_keeps_the_tail_only_of_long_enough_values() {
        let m = masker();
        assert_eq!(m.mask(Style::Partial, "4111111111111111"), "****1111");
        assert_eq!(m.mask(Style::Partial, "12345678"), "****5678");
        assert_eq!(m.mask(Style::Partial, "1234567"), "****");
        assert_eq!(m.mask(Style::Partial, "é1234567"), "****4567");
        let none = Masker::new("x".into(), 0, None);
        assert_eq!(none.mask(Style::Partial, "4111111111111111"), "****");
    }

    #[test]
    fn hash_is_keyed_stable_and_hides_the_value() {
        let m = masker();
        let a = m.mask(Style::Hash, "alice@example.com");
        assert_eq!(a, m.mask(Style::Hash, "alice@example.com"));
        assert_ne!(a, m.mask(Style::Hash, "bob@example.com"));
        assert!(a.starts_with("hmac:") && a.len() == 5 + 32, "{a}");
        assert!(!a.contains("alice"));
        let other_key = Masker::new("x".into(), 4, Some(b"another-key-0123456789"));
        assert_ne!(a, other_key.mask(Style::Hash, "alice@example.com"));
    }

    #[test]
    fn hash_matches_a_known_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let m = Masker::new("x".into(), 4, Some(b"Jefe"));
        assert_eq!(
            m.mask(Style::Hash, "what do ya want for nothing?"),
            "hmac:5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", masker());
        assert!(!shown.contains("test-key"), "{shown}");
    }
}
