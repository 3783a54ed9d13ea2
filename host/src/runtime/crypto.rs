//! The 0.2.0 `crypto` import: JWS signature verification (ring) and HMAC-SHA256 (the `hmac` and
//! `sha2` crates, on the CPU's SHA instructions where it has them) in native code, with keys
//! that a plugin imports once and then uses through a handle in its store's table.
//!
//! The plugin keeps the policy (which issuer may use which algorithms, which key fits which
//! token); the host makes sure a key only verifies the algorithms it was imported for and that
//! each algorithm fits the key's family. There is no `none`.

use hmac::{Hmac, Mac};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use sha2::Sha256;
use wasmtime::component::Resource;

use super::bindings::v02::tollgate::plugin::crypto::{
    Algorithm, Host, HostMacKey, HostVerifyKey, KeyMaterial,
};
use super::host_state::HostState;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (ring's own bound).
const MAX_RSA_BITS: usize = 8192;
/// Most keys one instance may hold (a plugin that imports keys per request hits this).
const MAX_KEYS_PER_INSTANCE: usize = 1024;
/// Longest HMAC secret accepted, in bytes.
const MAX_MAC_SECRET: usize = 1024;
/// Most messages one `sign-many` call hashes.
const MAX_MACS_PER_CALL: usize = 4096;
/// Most message bytes one `sign-many` call hashes (it runs on the request's thread).
const MAX_MAC_BYTES_PER_CALL: usize = 4 << 20;

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

/// Put a key that passed its checks (`made`) in the instance's table, within
/// [`MAX_KEYS_PER_INSTANCE`] keys of any kind.
fn hold_key<K: Send + 'static>(
    host: &mut HostState,
    made: Result<K, String>,
) -> wasmtime::Result<Result<Resource<K>, String>> {
    let key = match made {
        Ok(key) => key,
        Err(message) => return Ok(Err(message)),
    };
    if host.keys_held >= MAX_KEYS_PER_INSTANCE {
        return Ok(Err(format!(
            "an instance may hold at most {MAX_KEYS_PER_INSTANCE} keys; drop unused ones"
        )));
    }
    let handle = host.table.push(key)?;
    host.keys_held += 1;
    Ok(Ok(handle))
}

/// Drop a key the plugin dropped, and give its place back.
fn release_key<K: 'static>(host: &mut HostState, key: Resource<K>) -> wasmtime::Result<()> {
    host.table.delete(key)?;
    host.keys_held = host.keys_held.saturating_sub(1);
    Ok(())
}

/// An HMAC-SHA256 secret held by the host for one plugin instance, as the hash states after
/// its inner and outer pads. `hmac` rather than ring: ring copies its larger per-message
/// contexts several times, and 20 MACs of short values took 3.2 us with it against 2.4 us.
pub struct MacKey(Hmac<Sha256>);

impl std::fmt::Debug for MacKey {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacKey").finish_non_exhaustive()
    }
}

impl MacKey {
    /// Check and hold a secret.
    fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.is_empty() || secret.len() > MAX_MAC_SECRET {
            return Err(format!(
                "an HMAC secret must be 1 to {MAX_MAC_SECRET} bytes (got {})",
                secret.len()
            ));
        }
        Hmac::<Sha256>::new_from_slice(secret)
            .map(Self)
            .map_err(|e| format!("HMAC secret: {e}"))
    }

    /// The HMAC of each message, 32 bytes each, concatenated; refused past the per-call caps.
    pub fn sign_many(&self, messages: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        Self::check_count(messages.len())?;
        Self::check_bytes(messages.iter().map(Vec::len).sum())?;
        Ok(self.sign_each(messages.iter().map(Vec::as_slice)))
    }

    /// Why `count` messages are too many for one `sign-many` call, if they are.
    pub fn check_count(count: usize) -> Result<(), String> {
        if count > MAX_MACS_PER_CALL {
            return Err(format!(
                "sign-many takes at most {MAX_MACS_PER_CALL} messages per call (got {count})"
            ));
        }
        Ok(())
    }

    /// Why messages of `bytes` bytes in all are too much for one `sign-many` call, if they are.
    pub fn check_bytes(bytes: usize) -> Result<(), String> {
        if bytes > MAX_MAC_BYTES_PER_CALL {
            return Err(format!(
                "sign-many takes at most {} MiB of messages per call (got {bytes} bytes)",
                MAX_MAC_BYTES_PER_CALL >> 20
            ));
        }
        Ok(())
    }

    /// The HMAC of each message, concatenated (the caps already checked).
    pub fn sign_each<'m>(&self, messages: impl ExactSizeIterator<Item = &'m [u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(messages.len().saturating_mul(32));
        for message in messages {
            let mut mac = self.0.clone();
            mac.update(message);
            out.extend_from_slice(&mac.finalize().into_bytes());
        }
        out
    }
}

impl HostMacKey for HostState {
    fn create(&mut self, secret: Vec<u8>) -> wasmtime::Result<Result<Resource<MacKey>, String>> {
        hold_key(self, MacKey::new(&secret))
    }

    fn sign_many(
        &mut self,
        key: Resource<MacKey>,
        messages: Vec<Vec<u8>>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.table.get(&key)?.sign_many(&messages))
    }

    fn drop(&mut self, key: Resource<MacKey>) -> wasmtime::Result<()> {
        release_key(self, key)
    }
}

impl HostVerifyKey for HostState {
    fn create(
        &mut self,
        material: KeyMaterial,
        algorithms: Vec<Algorithm>,
    ) -> wasmtime::Result<Result<Resource<VerifyKey>, String>> {
        hold_key(self, VerifyKey::new(material, algorithms))
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
        release_key(self, key)
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

    #[test]
    fn mac_keys_sign_many_messages_within_the_caps() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let key = MacKey::new(b"Jefe").expect("a short secret is allowed");
        let macs = key
            .sign_many(&[b"what do ya want for nothing?".to_vec(), Vec::new()])
            .expect("two messages");
        assert_eq!(macs.len(), 64);
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(&macs[..32]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231 test case 6: a secret longer than a block is hashed first.
        let long = MacKey::new(&[0xaa; 131]).expect("131 bytes");
        let mac = long
            .sign_many(&[b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec()])
            .expect("one message");
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        let empty = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe"), b"");
        assert_eq!(&macs[32..], empty.as_ref());
        assert!(MacKey::new(b"").is_err());
        assert!(MacKey::new(&[1; MAX_MAC_SECRET + 1]).is_err());
        let many = vec![Vec::new(); MAX_MACS_PER_CALL + 1];
        let err = key.sign_many(&many).expect_err("too many messages");
        assert!(err.contains("4096"), "{err}");
        let big = vec![vec![0; MAX_MAC_BYTES_PER_CALL / 2 + 1]; 2];
        let err = key.sign_many(&big).expect_err("too many bytes");
        assert!(err.contains("4 MiB"), "{err}");
    }
}
