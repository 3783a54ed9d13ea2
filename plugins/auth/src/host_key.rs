//! Signature checks by the gateway (contract 0.2.0 `crypto`): a key parsed here in the plugin
//! (PEM, JWK) is imported into the host once per instance, on its first use, and every later
//! check is one host call in native code (tens of microseconds instead of 1–2 ms of RustCrypto
//! compiled to Wasm). The host key is pinned to the algorithms this key may verify (its family,
//! and the JWK's own `alg` when it names one); the issuer's algorithm list is checked before.
//!
//! Built natively (unit tests) there is no host: the RustCrypto check in `keys.rs` runs instead,
//! as it does in Wasm for a key the host refuses (an RSA modulus over 8192 bits).

use std::cell::OnceCell;
use std::rc::Rc;

use crate::keys::{Alg, KeyMaterial};

#[cfg(target_family = "wasm")]
type Handle = tollgate_sdk::crypto::VerifyKey;
#[cfg(not(target_family = "wasm"))]
type Handle = ();

/// The host's copy of one key, imported on first use and shared by clones of the key.
#[derive(Clone, Default)]
pub struct HostKey(Rc<OnceCell<Option<Handle>>>);

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0.get() {
            None => "HostKey(not imported)",
            Some(None) => "HostKey(refused)",
            Some(Some(_)) => "HostKey(imported)",
        })
    }
}

impl HostKey {
    /// Check `signature` over `message` with `alg`, in the host when it holds the key.
    pub fn verify(
        &self,
        key: &KeyMaterial,
        pinned: Option<Alg>,
        alg: Alg,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        match self.handle(key, pinned) {
            Some(handle) => host_verify(handle, alg, message, signature),
            None => key.verify(alg, message, signature),
        }
    }

    #[cfg(target_family = "wasm")]
    fn handle(&self, key: &KeyMaterial, pinned: Option<Alg>) -> Option<&Handle> {
        self.0.get_or_init(|| import(key, pinned)).as_ref()
    }

    #[cfg(not(target_family = "wasm"))]
    fn handle(&self, _key: &KeyMaterial, _pinned: Option<Alg>) -> Option<&Handle> {
        self.0.get().and_then(Option::as_ref)
    }
}

#[cfg(target_family = "wasm")]
fn host_verify(handle: &Handle, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
    handle.verify(host_alg(alg), message, signature)
}

#[cfg(not(target_family = "wasm"))]
fn host_verify(_handle: &Handle, _alg: Alg, _message: &[u8], _signature: &[u8]) -> bool {
    false
}

#[cfg(target_family = "wasm")]
fn host_alg(alg: Alg) -> tollgate_sdk::crypto::Algorithm {
    use tollgate_sdk::crypto::Algorithm as H;
    match alg {
        Alg::HS256 => H::Hs256,
        Alg::HS384 => H::Hs384,
        Alg::HS512 => H::Hs512,
        Alg::RS256 => H::Rs256,
        Alg::RS384 => H::Rs384,
        Alg::RS512 => H::Rs512,
        Alg::PS256 => H::Ps256,
        Alg::PS384 => H::Ps384,
        Alg::PS512 => H::Ps512,
        Alg::ES256 => H::Es256,
        Alg::ES384 => H::Es384,
        Alg::EdDSA => H::Eddsa,
    }
}

/// Every algorithm, for picking the ones a key may verify.
#[cfg(target_family = "wasm")]
const ALL: [Alg; 12] = [
    Alg::HS256,
    Alg::HS384,
    Alg::HS512,
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
    Alg::ES256,
    Alg::ES384,
    Alg::EdDSA,
];

#[cfg(target_family = "wasm")]
fn import(key: &KeyMaterial, pinned: Option<Alg>) -> Option<Handle> {
    use tollgate_sdk::crypto::{KeyMaterial as M, RsaPublicKey, VerifyKey};
    let material = match key {
        KeyMaterial::Hmac(secret) => M::Hmac(secret.clone()),
        KeyMaterial::Rsa(rsa) => {
            use rsa::traits::PublicKeyParts;
            M::Rsa(RsaPublicKey {
                n: rsa.n().to_bytes_be(),
                e: rsa.e().to_bytes_be(),
            })
        }
        KeyMaterial::P256(k) => M::P256(k.to_encoded_point(false).as_bytes().to_vec()),
        KeyMaterial::P384(k) => M::P384(k.to_encoded_point(false).as_bytes().to_vec()),
        KeyMaterial::Ed25519(k) => M::Ed25519(k.as_bytes().to_vec()),
    };
    let algorithms: Vec<_> = ALL
        .into_iter()
        .filter(|a| key.supports(*a) && pinned.is_none_or(|p| p == *a))
        .map(host_alg)
        .collect();
    match VerifyKey::create(&material, &algorithms) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tollgate_sdk::log::warn(&format!(
                "the gateway refused a {} ({e}); verifying it in the plugin",
                key.family()
            ));
            None
        }
    }
}
