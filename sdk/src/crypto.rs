//! Signature verification and keyed hashes by the gateway, in native code: a JWS check (RS256,
//! PS256, ES256, EdDSA, HS256, ...) costs tens of microseconds instead of a millisecond or two
//! compiled to Wasm, and [`MacKey`] hashes a batch of values with HMAC-SHA256 in one call.
//! Import each key once (in [`crate::Plugin::init`], or when a key set is fetched) and keep
//! the [`VerifyKey`]; it only verifies the algorithms it was imported for, and there is no
//! `none`. Which algorithms an issuer may use, and which key fits which token, stays your
//! plugin's decision.
//!
//! ```no_run
//! use tollgate_sdk::crypto::{Algorithm, KeyMaterial, VerifyKey};
//!
//! let key = VerifyKey::create(&KeyMaterial::Hmac(vec![7; 32]), &[Algorithm::Hs256])?;
//! let ok = key.verify(Algorithm::Hs256, b"header.payload", &[0u8; 32]);
//! # let _ = ok;
//! # Ok::<(), String>(())
//! ```

use crate::__private::tollgate::plugin::crypto as raw;

pub use raw::Algorithm;

/// An RSA public key: modulus and public exponent, big-endian unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// The modulus.
    pub n: Vec<u8>,
    /// The public exponent.
    pub e: Vec<u8>,
}

/// Public key material (or, for HMAC, the shared secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// An HMAC secret (HS256/384/512), at least 32 bytes (48 for HS384, 64 for HS512).
    Hmac(Vec<u8>),
    /// An RSA public key of at least 2048 bits (RS* and PS*).
    Rsa(RsaPublicKey),
    /// A P-256 public key as an uncompressed SEC1 point, 65 bytes (ES256).
    P256(Vec<u8>),
    /// A P-384 public key as an uncompressed SEC1 point, 97 bytes (ES384).
    P384(Vec<u8>),
    /// An Ed25519 public key, 32 bytes (EdDSA).
    Ed25519(Vec<u8>),
}

impl KeyMaterial {
    /// The import's form: borrowed, nothing copied.
    fn as_raw(&self) -> raw::KeyMaterial<'_> {
        match self {
            Self::Hmac(secret) => raw::KeyMaterial::Hmac(secret),
            Self::Rsa(key) => raw::KeyMaterial::Rsa(raw::RsaPublicKey {
                n: &key.n,
                e: &key.e,
            }),
            Self::P256(point) => raw::KeyMaterial::P256(point),
            Self::P384(point) => raw::KeyMaterial::P384(point),
            Self::Ed25519(key) => raw::KeyMaterial::Ed25519(key),
        }
    }
}

/// A key held by the gateway for this instance, usable with the algorithms it was imported for.
#[derive(Debug)]
pub struct VerifyKey(raw::VerifyKey);

impl VerifyKey {
    /// Import a key for `algorithms` (each must fit the key's family). Fails with a message on a
    /// malformed or too small key (RSA under 2048 bits, an HMAC secret under 32 bytes) or an
    /// algorithm that does not fit it.
    pub fn create(material: &KeyMaterial, algorithms: &[Algorithm]) -> Result<Self, String> {
        raw::VerifyKey::create(material.as_raw(), algorithms).map(Self)
    }

    /// True when `signature` over `message` is valid for `alg` with this key; false when `alg`
    /// is not one of the key's algorithms. For a JWS, `message` is `header.payload` and
    /// `signature` the decoded third part (ECDSA as `r || s`).
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(alg, message, signature)
    }
}

/// Most messages, and message bytes, the gateway hashes in one call (`sign-many`'s caps).
const MACS_PER_CALL: usize = 4096;
const MAC_BYTES_PER_CALL: usize = 4 << 20;

/// An HMAC-SHA256 secret held by the gateway for this instance: keyed hashes in native code,
/// many messages per call (one crossing into the host for a whole body's values).
///
/// ```no_run
/// use tollgate_sdk::crypto::MacKey;
///
/// let key = MacKey::create(b"a-long-random-secret")?;
/// let macs = key.sign_many(&[b"alice@example.com".as_slice(), b"bob@example.com"])?;
/// assert_eq!(macs.len(), 2);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug)]
pub struct MacKey(raw::MacKey);

impl MacKey {
    /// Hold `secret` (1 to 1024 bytes) in the gateway.
    pub fn create(secret: &[u8]) -> Result<Self, String> {
        raw::MacKey::create(secret).map(Self)
    }

    /// The HMAC-SHA256 of each message, in order. Batches past the gateway's per-call caps
    /// (4096 messages, 4 MiB) are split; a single message over 4 MiB is refused.
    pub fn sign_many(&self, messages: &[&[u8]]) -> Result<Vec<[u8; 32]>, String> {
        let mut macs = Vec::with_capacity(messages.len());
        let mut rest = messages;
        while !rest.is_empty() {
            let mut bytes = 0;
            let take = rest
                .iter()
                .take(MACS_PER_CALL)
                .take_while(|m| {
                    bytes += m.len();
                    bytes <= MAC_BYTES_PER_CALL
                })
                .count()
                .max(1);
            let (batch, later) = rest.split_at(take.min(rest.len()));
            let flat = self.0.sign_many(batch)?;
            macs.extend(
                flat.chunks_exact(32)
                    .filter_map(|c| <[u8; 32]>::try_from(c).ok()),
            );
            rest = later;
        }
        if macs.len() != messages.len() {
            return Err("the gateway returned a short list of MACs".into());
        }
        Ok(macs)
    }
}
