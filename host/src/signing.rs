//! Plugin module signatures: Ed25519 over the module's SHA-256 digest, in a detached
//! `<module>.sig` file (docs/rollout.md says why this format and how it relates to Sigstore).
//!
//! ```text
//! <module>.wasm.sig = {"algorithm": "ed25519", "key_id": "<16 hex>", "sha256": "<64 hex>",
//!                      "signature": "<base64 of the 64-byte signature over the 32-byte digest>"}
//! ```
//!
//! A key's id is the first 16 hex digits of the SHA-256 of its raw 32-byte public key. Keys are
//! PEM files: PKCS#8 `PRIVATE KEY` and SPKI `PUBLIC KEY`, as `openssl genpkey -algorithm
//! ed25519` and `openssl pkey -pubout` write them. Nothing here knows about configs or wasmtime.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only algorithm a signature file may name.
pub const ALGORITHM: &str = "ed25519";

/// A public key the gateway trusts to sign plugin modules.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedKey {
    id: String,
    key: VerifyingKey,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKey({})", self.id)
    }
}

impl TrustedKey {
    /// An SPKI `PUBLIC KEY` PEM holding an Ed25519 key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| format!("not an Ed25519 public key in PEM (SPKI) form: {e}"))?;
        Ok(Self {
            id: key_id(&key),
            key,
        })
    }

    /// The key's id (16 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// First 16 hex digits of the SHA-256 of the raw public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The detached signature file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Id of the signing key.
    pub key_id: String,
    /// Hex SHA-256 of the signed module.
    pub sha256: String,
    /// Base64 Ed25519 signature over the 32 bytes of that digest.
    pub signature: String,
}

/// Where a module's signature lives: the module's path with `.sig` appended.
pub fn signature_path(module: &Path) -> PathBuf {
    let mut s = module.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// A new key pair as PEM: (PKCS#8 private key, SPKI public key).
pub fn generate() -> Result<(String, String), String> {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| "the system random generator failed".to_owned())?;
    let key = SigningKey::from_bytes(&seed);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the private key: {e}"))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    Ok((private.to_string(), public))
}

/// The public key (SPKI PEM) of a PKCS#8 private key PEM.
pub fn public_of(private_pem: &str) -> Result<String, String> {
    let key = signing_key(private_pem)?;
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the public key: {e}"))
}

fn signing_key(private_pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(private_pem.trim())
        .map_err(|e| format!("not an Ed25519 private key in PEM (PKCS#8) form: {e}"))
}

/// Sign `module` (its bytes) with a PKCS#8 PEM private key.
pub fn sign(private_pem: &str, module: &[u8]) -> Result<SignatureFile, String> {
    let key = signing_key(private_pem)?;
    let digest: [u8; 32] = Sha256::digest(module).into();
    let signature = key.sign(&digest);
    Ok(SignatureFile {
        algorithm: ALGORITHM.to_owned(),
        key_id: key_id(&key.verifying_key()),
        sha256: hex(&digest),
        signature: BASE64.encode(signature.to_bytes()),
    })
}

/// Why a module's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No signature file beside the module.
    #[error("has no signature (`{0}` not found)")]
    Missing(PathBuf),
    /// The signature file cannot be read or parsed.
    #[error("has an unreadable signature file `{path}`: {reason}")]
    Malformed {
        /// The signature file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The module's bytes are not the ones that were signed.
    #[error("was changed after signing (signed sha256 {signed}, module sha256 {actual})")]
    Changed {
        /// The digest in the signature file.
        signed: String,
        /// The module's digest.
        actual: String,
    },
    /// Signed by a key that is not in `[gateway] trusted_keys`.
    #[error("is signed by key {0}, which is not in [gateway] trusted_keys")]
    Untrusted(String),
    /// The signature does not verify with the trusted key it names.
    #[error("has a signature that does not verify with trusted key {0}")]
    BadSignature(String),
}

/// Check `module`'s signature file against its digest and the trusted keys. Returns the signing
/// key's id.
pub fn verify(
    module: &Path,
    digest: &[u8; 32],
    trusted: &[TrustedKey],
) -> Result<String, VerifyError> {
    let path = signature_path(module);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::Missing(path));
        }
        Err(e) => {
            return Err(VerifyError::Malformed {
                path,
                reason: e.to_string(),
            });
        }
    };
    let malformed = |reason: String| VerifyError::Malformed {
        path: path.clone(),
        reason,
    };
    let file: SignatureFile = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    if file.algorithm != ALGORITHM {
        return Err(malformed(format!(
            "algorithm `{}` is not `{ALGORITHM}`",
            file.algorithm
        )));
    }
    let actual = hex(digest);
    if !file.sha256.eq_ignore_ascii_case(&actual) {
        return Err(VerifyError::Changed {
            signed: file.sha256,
            actual,
        });
    }
    let Some(key) = trusted.iter().find(|k| k.id == file.key_id) else {
        return Err(VerifyError::Untrusted(file.key_id));
    };
    let bytes = BASE64
        .decode(file.signature.trim())
        .map_err(|e| malformed(format!("signature is not base64: {e}")))?;
    let signature = Signature::from_slice(&bytes)
        .map_err(|_| malformed("signature is not 64 bytes".to_owned()))?;
    key.key
        .verify(digest, &signature)
        .map_err(|_| VerifyError::BadSignature(key.id.clone()))?;
    Ok(key.id.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sign_then_verify_and_each_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("m.wasm");
        std::fs::write(&module, b"module bytes").unwrap();
        let (private, public) = generate().unwrap();
        let trusted = TrustedKey::from_pem(&public).unwrap();
        let digest: [u8; 32] = Sha256::digest(b"module bytes").into();
        assert_eq!(
            verify(&module, &digest, std::slice::from_ref(&trusted)),
            Err(VerifyError::Missing(signature_path(&module)))
        );
        let file = sign(&private, b"module bytes").unwrap();
        let sig = serde_json::to_string(&file).unwrap();
        std::fs::write(signature_path(&module), &sig).unwrap();
        assert_eq!(
            verify(&module, &digest, std::slice::from_ref(&trusted)),
            Ok(trusted.id().to_owned())
        );
        let other: [u8; 32] = Sha256::digest(b"changed").into();
        assert!(matches!(
            verify(&module, &other, std::slice::from_ref(&trusted)),
            Err(VerifyError::Changed { .. })
        ));
        let (_, stranger) = generate().unwrap();
        let stranger = TrustedKey::from_pem(&stranger).unwrap();
        assert_eq!(
            verify(&module, &digest, &[stranger]),
            Err(VerifyError::Untrusted(trusted.id().to_owned()))
        );
        // Same key id, a signature made by another key over the same digest.
        let (forger, _) = generate().unwrap();
        let mut forged = sign(&forger, b"module bytes").unwrap();
        forged.key_id = trusted.id().to_owned();
        std::fs::write(
            signature_path(&module),
            serde_json::to_string(&forged).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verify(&module, &digest, std::slice::from_ref(&trusted)),
            Err(VerifyError::BadSignature(trusted.id().to_owned()))
        );
        assert_eq!(public_of(&private).unwrap(), public);
    }
}
