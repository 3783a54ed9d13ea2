//! Signature verification by the gateway, in native code: a JWS check (RS256, PS256, ES256,
//! EdDSA, HS256, ...) costs tens of microseconds instead of a millisecond or two compiled to
//! Wasm. Import each key once (in [`crate::Plugin::init`], or when a key set is fetched) and keep
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

pub use raw::{Algorithm, KeyMaterial, RsaPublicKey};

/// A key held by the gateway for this instance, usable with the algorithms it was imported for.
#[derive(Debug)]
pub struct VerifyKey(raw::VerifyKey);

impl VerifyKey {
    /// Import a key for `algorithms` (each must fit the key's family). Fails with a message on a
    /// malformed or too small key (RSA under 2048 bits, an HMAC secret under 32 bytes) or an
    /// algorithm that does not fit it.
    pub fn create(material: &KeyMaterial, algorithms: &[Algorithm]) -> Result<Self, String> {
        raw::VerifyKey::create(material, algorithms).map(Self)
    }

    /// True when `signature` over `message` is valid for `alg` with this key; false when `alg`
    /// is not one of the key's algorithms. For a JWS, `message` is `header.payload` and
    /// `signature` the decoded third part (ECDSA as `r || s`).
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(alg, message, signature)
    }
}
