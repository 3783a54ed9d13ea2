//! The 0.2.0 `crypto` import: JWS signature verification in native code (ring), with keys that a
//! plugin imports once and then uses through a handle in its store's table.
//!
//! The plugin keeps the policy (which issuer may use which algorithms, which key fits which
//! token); the host makes sure a key only verifies the algorithms it was imported for and that
//! each algorithm fits the key's family. There is no `none`.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use wasmtime::component::Resource;

use super::bindings::v02::tollgate::plugin::crypto::{Algorithm, Host, HostVerifyKey, KeyMaterial};
use super::host_state::HostState;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (ring's own bound).
const MAX_RSA_BITS: usize = 8192;
/// Most keys one instance may hold (a plugin that imports keys per request hits this).
const MAX_KEYS_PER_INSTANCE: usize = 1024;

/// The key material, typed by family.
#[derive(Clone)]
enum Material {
    Hmac(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// A key held by the host for one plugin instance, with the algorithms it may verify.
pub struct VerifyKey {
    material: Material,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for VerifyKey {
    // Never print key bytes (an HMAC secret is a secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Hs256 => "HS256",
        Algorithm::Hs384 => "HS384",
        Algorithm::Hs512 => "HS512",
        Algorithm::Rs256 => "RS256",
        Algorithm::Rs384 => "RS384",
        Algorithm::Rs512 => "RS512",
        Algorithm::Ps256 => "PS256",
        Algorithm::Ps384 => "PS384",
        Algorithm::Ps512 => "PS512",
        Algorithm::Es256 => "ES256",
        Algorithm::Es384 => "ES384",
        Algorithm::Eddsa => "EdDSA",
    }
}

fn strip_zeros(bytes: Vec<u8>) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

impl Material {
    fn family(&self) -> &'static str {
        match self {
            Material::Hmac(_) => "HMAC secret",
            Material::Rsa { .. } => "RSA key",
            Material::P256(_) => "P-256 key",
            Material::P384(_) => "P-384 key",
            Material::Ed25519(_) => "Ed25519 key",
        }
    }

    fn from_wit(material: KeyMaterial) -> Result<Self, String> {
        Ok(match material {
            KeyMaterial::Hmac(secret) if secret.len() < 32 => {
                return Err(format!(
                    "an HMAC secret must be at least 32 bytes (got {})",
                    secret.len()
                ));
            }
            KeyMaterial::Hmac(secret) => Material::Hmac(secret),
            KeyMaterial::Rsa(key) => {
                let n = strip_zeros(key.n);
                let e = strip_zeros(key.e);
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(format!(
                        "RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (got {bits})"
                    ));
                }
                if e.is_empty() || e.len() > 4 {
                    return Err("RSA public exponent out of range".into());
                }
                Material::Rsa { n, e }
            }
            KeyMaterial::P256(point) if point.len() == 65 && point[0] == 4 => Material::P256(point),
            KeyMaterial::P256(_) => {
                return Err("a P-256 key must be an uncompressed point (65 bytes)".into());
            }
            KeyMaterial::P384(point) if point.len() == 97 && point[0] == 4 => Material::P384(point),
            KeyMaterial::P384(_) => {
                return Err("a P-384 key must be an uncompressed point (97 bytes)".into());
            }
            KeyMaterial::Ed25519(x) if x.len() == 32 => Material::Ed25519(x),
            KeyMaterial::Ed25519(_) => return Err("an Ed25519 key must be 32 bytes".into()),
        })
    }

    /// Whether this key can verify `alg` at all (family, and an HMAC secret at least as long as
    /// the hash output).
    fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Material::Hmac(s) => match alg {
                Hs256 => s.len() >= 32,
                Hs384 => s.len() >= 48,
                Hs512 => s.len() >= 64,
                _ => false,
            },
            Material::Rsa { .. } => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            Material::P256(_) => alg == Es256,
            Material::P384(_) => alg == Es384,
            Material::Ed25519(_) => alg == Eddsa,
        }
    }

    fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        use Algorithm::*;
        match self {
            Material::Hmac(secret) => {
                let algorithm = match alg {
                    Hs256 => ring::hmac::HMAC_SHA256,
                    Hs384 => ring::hmac::HMAC_SHA384,
                    Hs512 => ring::hmac::HMAC_SHA512,
                    _ => return false,
                };
                // Constant-time comparison inside ring.
                ring::hmac::verify(&ring::hmac::Key::new(algorithm, secret), message, sig).is_ok()
            }
            Material::Rsa { n, e } => {
                let params = match alg {
                    Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            Material::P256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::P384(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::Ed25519(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

impl VerifyKey {
    /// Check and hold a key for `algorithms`.
    fn new(material: KeyMaterial, algorithms: Vec<Algorithm>) -> Result<Self, String> {
        let material = Material::from_wit(material)?;
        if algorithms.is_empty() {
            return Err("a key needs at least one algorithm".into());
        }
        if let Some(alg) = algorithms.iter().find(|a| !material.fits(**a)) {
            return Err(format!(
                "algorithm {} does not fit a {}",
                name(*alg),
                material.family()
            ));
        }
        Ok(Self {
            material,
            algorithms,
        })
    }

    /// True when `sig` is a valid `alg` signature of `message`, and `alg` is one of this key's.
    pub fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        self.algorithms.contains(&alg) && self.material.verify(alg, message, sig)
    }
}

impl Host for HostState {}

impl HostVerifyKey for HostState {
    fn create(
        &mut self,
        material: KeyMaterial,
        algorithms: Vec<Algorithm>,
    ) -> wasmtime::Result<Result<Resource<VerifyKey>, String>> {
        let key = match VerifyKey::new(material, algorithms) {
            Ok(key) => key,
            Err(message) => return Ok(Err(message)),
        };
        if self.keys_held >= MAX_KEYS_PER_INSTANCE {
            return Ok(Err(format!(
                "an instance may hold at most {MAX_KEYS_PER_INSTANCE} keys; drop unused ones"
            )));
        }
        let handle = self.table.push(key)?;
        self.keys_held += 1;
        Ok(Ok(handle))
    }

    fn verify(
        &mut self,
        key: Resource<VerifyKey>,
        alg: Algorithm,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> wasmtime::Result<bool> {
        Ok(self.table.get(&key)?.verify(alg, &message, &signature))
    }

    fn drop(&mut self, key: Resource<VerifyKey>) -> wasmtime::Result<()> {
        self.table.delete(key)?;
        self.keys_held = self.keys_held.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::v02::tollgate::plugin::crypto::RsaPublicKey;

    #[test]
    fn keys_are_typed_and_pinned() {
        let secret = KeyMaterial::Hmac(vec![7; 32]);
        assert!(VerifyKey::new(secret.clone(), vec![Algorithm::Hs384]).is_err());
        assert!(VerifyKey::new(secret.clone(), vec![Algorithm::Rs256]).is_err());
        assert!(VerifyKey::new(secret.clone(), vec![]).is_err());
        assert!(VerifyKey::new(KeyMaterial::Hmac(vec![7; 16]), vec![Algorithm::Hs256]).is_err());
        let key = VerifyKey::new(secret, vec![Algorithm::Hs256]).expect("a 32-byte secret");
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7; 32]),
            b"a.b",
        );
        assert!(key.verify(Algorithm::Hs256, b"a.b", tag.as_ref()));
        assert!(!key.verify(Algorithm::Hs256, b"a.c", tag.as_ref()));
        assert!(!key.verify(Algorithm::Hs512, b"a.b", tag.as_ref()));
        let small = KeyMaterial::Rsa(RsaPublicKey {
            n: vec![0xff; 128],
            e: vec![1, 0, 1],
        });
        let err = VerifyKey::new(small, vec![Algorithm::Rs256]).expect_err("1024 bits");
        assert!(err.contains("2048"), "{err}");
        assert!(VerifyKey::new(KeyMaterial::P256(vec![4; 64]), vec![Algorithm::Es256]).is_err());
    }
}
