//! Mask styles: what a value found by a rule is replaced with.

use crate::mac::MacKey;

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
    key: Option<MacKey>,
    /// The same key held by the gateway, which hashes natively and many values per call.
    /// Outside Wasm (the gateway's own copy of the engine, native tests) the local key is used.
    #[cfg(target_arch = "wasm32")]
    host_key: Option<std::rc::Rc<tollgate_sdk::crypto::MacKey>>,
    /// Whether [`Masker::mask_deferring`] leaves hashes for [`Masker::fill`]: in Wasm, where
    /// one call into the gateway hashes a body's values; natively a hash is written at once.
    defer: bool,
}

/// Hash masks written as placeholders, whose digits [`Masker::fill`] writes later: one call
/// into the gateway for all the values of a body instead of one HMAC each in Wasm.
#[derive(Debug, Default)]
pub struct Deferred {
    /// Where each placeholder's digits start in the output.
    at: Vec<usize>,
    /// The values to hash, back to back, and where each ends.
    values: String,
    ends: Vec<usize>,
}

impl Deferred {
    /// How many hashes wait.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether no hash waits.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Move the placeholders recorded since the `first` one by `by` bytes: they were written
    /// into scratch space that was then appended to the output at offset `by`.
    pub fn shift_from(&mut self, first: usize, by: usize) {
        for at in self.at.iter_mut().skip(first) {
            *at += by;
        }
    }
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
        #[cfg(target_arch = "wasm32")]
        let host_key = key
            .and_then(|k| tollgate_sdk::crypto::MacKey::create(k).ok())
            .map(std::rc::Rc::new);
        let key = key.and_then(MacKey::new);
        Self {
            replacement,
            keep,
            key,
            #[cfg(target_arch = "wasm32")]
            defer: host_key.is_some(),
            #[cfg(target_arch = "wasm32")]
            host_key,
            #[cfg(not(target_arch = "wasm32"))]
            defer: false,
        }
    }

    /// This masker, deferring its hashes as it does in Wasm (for tests of that path).
    #[cfg(test)]
    pub fn deferring(mut self) -> Self {
        self.defer = true;
        self
    }

    /// [`Masker::mask_into`], except that a hash is left as a placeholder recorded in
    /// `deferred` for [`Masker::fill`].
    pub fn mask_deferring(
        &self,
        style: Style,
        canonical: &str,
        out: &mut String,
        deferred: &mut Deferred,
    ) {
        if style != Style::Hash || self.key.is_none() || !self.defer {
            return self.mask_into(style, canonical, out);
        }
        out.push_str(HASH_PREFIX);
        deferred.at.push(out.len());
        out.push_str(PLACEHOLDER);
        deferred.values.push_str(canonical);
        deferred.ends.push(deferred.values.len());
    }

    /// Write the digits of every hash in `deferred` into its placeholder in `out`.
    pub fn fill(&self, out: &mut String, deferred: &mut Deferred) {
        let mut start = 0;
        let values: Vec<&[u8]> = deferred
            .ends
            .iter()
            .map(|&end| {
                let value = deferred.values.as_bytes().get(start..end).unwrap_or(b"");
                start = end;
                value
            })
            .collect();
        let macs = self.macs(&values);
        for (&at, mac) in deferred.at.iter().zip(&macs) {
            if out.get(at..at + HASH_BYTES * 2).is_some() {
                out.replace_range(at..at + HASH_BYTES * 2, &hex(mac));
            }
        }
        *deferred = Deferred::default();
    }

    /// The HMAC of each value: by the gateway in one call when it holds the key, else here.
    fn macs(&self, values: &[&[u8]]) -> Vec<[u8; 32]> {
        #[cfg(target_arch = "wasm32")]
        if let Some(Ok(macs)) = self.host_key.as_ref().map(|k| k.sign_many(values)) {
            return macs;
        }
        let Some(key) = &self.key else {
            return Vec::new();
        };
        values.iter().map(|value| key.sign(value)).collect()
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
        // The config refuses `hash` without a key; never fall back to the value.
        #[cfg(target_arch = "wasm32")]
        let mac = self.macs(&[value.as_bytes()]).first().copied();
        #[cfg(not(target_arch = "wasm32"))]
        let mac = self.key.as_ref().map(|key| key.sign(value.as_bytes()));
        match mac {
            Some(mac) => {
                out.push_str(HASH_PREFIX);
                out.push_str(&hex(&mac));
            }
            None => out.push_str(&self.replacement),
        }
    }
}

/// What a hash mask starts with.
const HASH_PREFIX: &str = "hmac:";

/// A deferred hash mask's digits until [`Masker::fill`] writes them.
const PLACEHOLDER: &str = "00000000000000000000000000000000";
const _: () = assert!(PLACEHOLDER.len() == HASH_BYTES * 2);

/// The first [`HASH_BYTES`] of a MAC in lower-case hexadecimal.
fn hex(mac: &[u8; 32]) -> HexDigits {
    let mut hex = [0u8; HASH_BYTES * 2];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(mac) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    HexDigits(hex)
}

/// A hash mask's digits, on the stack.
struct HexDigits([u8; HASH_BYTES * 2]);

impl std::ops::Deref for HexDigits {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ASCII digits and letters are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
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
