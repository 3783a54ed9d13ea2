//! Typed verification keys and JWS algorithms. A key knows its family, and a signature is only
//! checked when the token's algorithm belongs to that family: an RSA public key can never be
//! used as an HMAC secret, an HMAC secret never verifies an RS256 token.
//!
//! Plain Rust with no host calls, so it is unit-tested natively.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

/// The JWS algorithms the plugin verifies. `none` is not one of them, in any spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    /// The algorithm named exactly (case-sensitive, as RFC 7518 spells it).
    pub fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "HS256" => Alg::HS256,
            "HS384" => Alg::HS384,
            "HS512" => Alg::HS512,
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    /// Whether `name` is some spelling of `none` (unsigned tokens are refused in every case).
    pub fn is_none(name: &str) -> bool {
        name.trim().eq_ignore_ascii_case("none")
    }

    /// The algorithm's name as it appears in a JWS header.
    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }
}

/// A verification key of one family.
#[derive(Clone)]
pub enum KeyMaterial {
    /// An HMAC secret (HS256/384/512 only).
    Hmac(Vec<u8>),
    /// An RSA public key (RS* and PS* only).
    Rsa(Box<rsa::RsaPublicKey>),
    /// A P-256 public key (ES256 only).
    P256(p256::ecdsa::VerifyingKey),
    /// A P-384 public key (ES384 only).
    P384(p384::ecdsa::VerifyingKey),
    /// An Ed25519 public key (EdDSA only).
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for KeyMaterial {
    // Never print key bytes (an HMAC secret is a secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.family())
    }
}

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Smallest HMAC secret accepted, in bytes (the HS256 output size, RFC 7518 §3.2).
pub const MIN_HMAC_BYTES: usize = 32;

impl KeyMaterial {
    /// The family's name, for messages.
    pub fn family(&self) -> &'static str {
        match self {
            KeyMaterial::Hmac(_) => "HMAC secret",
            KeyMaterial::Rsa(_) => "RSA key",
            KeyMaterial::P256(_) => "P-256 key",
            KeyMaterial::P384(_) => "P-384 key",
            KeyMaterial::Ed25519(_) => "Ed25519 key",
        }
    }

    /// Whether this key can verify `alg` at all (family match, and an HMAC secret at least as
    /// long as the hash output).
    pub fn supports(&self, alg: Alg) -> bool {
        use Alg::*;
        match self {
            KeyMaterial::Hmac(secret) => match alg {
                HS256 => secret.len() >= 32,
                HS384 => secret.len() >= 48,
                HS512 => secret.len() >= 64,
                _ => false,
            },
            KeyMaterial::Rsa(_) => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyMaterial::P256(_) => alg == ES256,
            KeyMaterial::P384(_) => alg == ES384,
            KeyMaterial::Ed25519(_) => alg == EdDSA,
        }
    }

    /// Check `signature` over `message` with `alg`. False for any mismatch, including a key of
    /// the wrong family.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if !self.supports(alg) {
            return false;
        }
        match self {
            KeyMaterial::Hmac(secret) => match alg {
                Alg::HS256 => hmac_ok::<Hmac<Sha256>>(secret, message, signature),
                Alg::HS384 => hmac_ok::<Hmac<Sha384>>(secret, message, signature),
                Alg::HS512 => hmac_ok::<Hmac<Sha512>>(secret, message, signature),
                _ => false,
            },
            KeyMaterial::Rsa(key) => rsa_ok(key, alg, message, signature),
            KeyMaterial::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            KeyMaterial::P384(key) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            KeyMaterial::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
        }
    }

    /// A public key from PEM text: SPKI `PUBLIC KEY` (RSA, P-256, P-384, Ed25519) or PKCS#1
    /// `RSA PUBLIC KEY`. Private keys and certificates are refused with a clear message.
    pub fn from_pem(pem: &str) -> Result<KeyMaterial, String> {
        let pem = pem.trim();
        if pem.contains("PRIVATE KEY-----") {
            return Err("a private key was given; configure the public key only".into());
        }
        if pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err("certificates are not supported; extract the public key \
                        (`openssl x509 -pubkey -noout`)"
                .into());
        }
        if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
            let key = rsa::RsaPublicKey::from_pkcs1_pem(pem)
                .map_err(|e| format!("invalid RSA public key: {e}"))?;
            return rsa_key(key);
        }
        if !pem.contains("-----BEGIN PUBLIC KEY-----") {
            return Err("expected a PEM `PUBLIC KEY` or `RSA PUBLIC KEY` block".into());
        }
        if let Ok(key) = rsa::RsaPublicKey::from_public_key_pem(pem) {
            return rsa_key(key);
        }
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(KeyMaterial::P256(key));
        }
        if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(KeyMaterial::P384(key));
        }
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(KeyMaterial::Ed25519(key));
        }
        Err("unsupported public key (expected RSA, P-256, P-384 or Ed25519)".into())
    }

    /// A key from a JWK object. `allow_symmetric` admits `kty: oct` (inline config only: a key
    /// set fetched over the network never supplies HMAC secrets). Returns the key and the JWK's
    /// own `alg`, when it names one.
    pub fn from_jwk(
        jwk: &Value,
        allow_symmetric: bool,
    ) -> Result<(KeyMaterial, Option<Alg>), String> {
        let obj = jwk.as_object().ok_or("a JWK must be a JSON object")?;
        let field = |name: &str| -> Result<Vec<u8>, String> {
            let text = obj
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("JWK member `{name}` is missing or not a string"))?;
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| format!("JWK member `{name}` is not base64url"))
        };
        let alg = match obj.get("alg").and_then(Value::as_str) {
            None => None,
            Some(name) => Some(
                Alg::parse(name).ok_or_else(|| format!("JWK `alg` {name:?} is not supported"))?,
            ),
        };
        let kty = obj
            .get("kty")
            .and_then(Value::as_str)
            .ok_or("JWK member `kty` is missing")?;
        let key = match kty {
            "RSA" => {
                let n = rsa::BigUint::from_bytes_be(&field("n")?);
                let e = rsa::BigUint::from_bytes_be(&field("e")?);
                rsa_key(rsa::RsaPublicKey::new(n, e).map_err(|e| format!("invalid RSA JWK: {e}"))?)?
            }
            "EC" => {
                let crv = obj.get("crv").and_then(Value::as_str).unwrap_or("");
                let (x, y) = (field("x")?, field("y")?);
                match crv {
                    "P-256" if x.len() == 32 && y.len() == 32 => {
                        let point = p256::EncodedPoint::from_affine_coordinates(
                            x.as_slice().into(),
                            y.as_slice().into(),
                            false,
                        );
                        KeyMaterial::P256(
                            p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                                .map_err(|_| "invalid P-256 JWK point")?,
                        )
                    }
                    "P-384" if x.len() == 48 && y.len() == 48 => {
                        let point = p384::EncodedPoint::from_affine_coordinates(
                            x.as_slice().into(),
                            y.as_slice().into(),
                            false,
                        );
                        KeyMaterial::P384(
                            p384::ecdsa::VerifyingKey::from_encoded_point(&point)
                                .map_err(|_| "invalid P-384 JWK point")?,
                        )
                    }
                    _ => {
                        return Err(format!(
                            "unsupported EC JWK (crv {crv:?} or coordinate size)"
                        ));
                    }
                }
            }
            "OKP" => {
                let crv = obj.get("crv").and_then(Value::as_str).unwrap_or("");
                if crv != "Ed25519" {
                    return Err(format!("unsupported OKP curve {crv:?}"));
                }
                let x: [u8; 32] = field("x")?
                    .try_into()
                    .map_err(|_| "Ed25519 JWK `x` must be 32 bytes")?;
                KeyMaterial::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&x)
                        .map_err(|_| "invalid Ed25519 JWK point")?,
                )
            }
            "oct" if allow_symmetric => hmac_key(field("k")?)?,
            "oct" => {
                return Err("symmetric (`oct`) keys are not accepted from a key set URL".into());
            }
            other => return Err(format!("unsupported JWK kty {other:?}")),
        };
        if let Some(alg) = alg
            && !key.supports(alg)
        {
            return Err(format!(
                "JWK `alg` {} does not fit a {}",
                alg.name(),
                key.family()
            ));
        }
        Ok((key, alg))
    }
}

/// An HMAC secret, refused when shorter than [`MIN_HMAC_BYTES`].
pub fn hmac_key(secret: Vec<u8>) -> Result<KeyMaterial, String> {
    if secret.len() < MIN_HMAC_BYTES {
        return Err(format!(
            "an HMAC secret must be at least {MIN_HMAC_BYTES} bytes (got {})",
            secret.len()
        ));
    }
    Ok(KeyMaterial::Hmac(secret))
}

fn rsa_key(key: rsa::RsaPublicKey) -> Result<KeyMaterial, String> {
    use rsa::traits::PublicKeyParts;
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA keys must have at least {MIN_RSA_BITS} bits (got {bits})"
        ));
    }
    Ok(KeyMaterial::Rsa(Box::new(key)))
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(
    secret: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    match <M as hmac::digest::KeyInit>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(message);
            // `verify_slice` compares in constant time.
            mac.verify_slice(signature).is_ok()
        }
        Err(_) => false,
    }
}

fn rsa_ok(key: &rsa::RsaPublicKey, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
    use rsa::{Pkcs1v15Sign, Pss};
    use sha2::Digest;
    let result = match alg {
        Alg::RS256 => key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        ),
        Alg::RS384 => key.verify(
            Pkcs1v15Sign::new::<Sha384>(),
            &Sha384::digest(message),
            signature,
        ),
        Alg::RS512 => key.verify(
            Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(message),
            signature,
        ),
        Alg::PS256 => key.verify(Pss::new::<Sha256>(), &Sha256::digest(message), signature),
        Alg::PS384 => key.verify(Pss::new::<Sha384>(), &Sha384::digest(message), signature),
        Alg::PS512 => key.verify(Pss::new::<Sha512>(), &Sha512::digest(message), signature),
        _ => return false,
    };
    result.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_in_every_spelling() {
        for name in ["none", "None", "NONE", "nOnE", " none "] {
            assert!(Alg::is_none(name));
            assert_eq!(Alg::parse(name), None);
        }
        assert_eq!(Alg::parse("hs256"), None, "names are case-sensitive");
    }

    #[test]
    fn keys_are_typed() {
        let secret = hmac_key(vec![7; 64]).expect("long enough");
        assert!(secret.supports(Alg::HS256) && secret.supports(Alg::HS512));
        assert!(!secret.supports(Alg::RS256) && !secret.supports(Alg::ES256));
        let short = KeyMaterial::Hmac(vec![7; 32]);
        assert!(short.supports(Alg::HS256) && !short.supports(Alg::HS384));
        assert!(hmac_key(vec![1; 16]).is_err());
    }

    #[test]
    fn hmac_verifies() {
        let secret = hmac_key(b"0123456789abcdef0123456789abcdef".to_vec()).expect("key");
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(
            b"0123456789abcdef0123456789abcdef",
        )
        .expect("key");
        mac.update(b"a.b");
        let sig = mac.finalize().into_bytes();
        assert!(secret.verify(Alg::HS256, b"a.b", &sig));
        assert!(!secret.verify(Alg::HS256, b"a.c", &sig));
        assert!(!secret.verify(Alg::RS256, b"a.b", &sig));
    }

    #[test]
    fn pem_refuses_private_keys_and_garbage() {
        let err =
            KeyMaterial::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .expect_err("private");
        assert!(err.contains("private key"), "{err}");
        assert!(KeyMaterial::from_pem("hello").is_err());
    }

    #[test]
    fn jwk_oct_only_when_allowed() {
        let jwk = serde_json::json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([1u8; 32])});
        assert!(KeyMaterial::from_jwk(&jwk, true).is_ok());
        assert!(KeyMaterial::from_jwk(&jwk, false).is_err());
        let jwk = serde_json::json!({"kty": "oct", "alg": "RS256", "k": URL_SAFE_NO_PAD.encode([1u8; 32])});
        assert!(
            KeyMaterial::from_jwk(&jwk, true).is_err(),
            "alg must fit the key"
        );
    }
}
