//! Certificates and keys read from PEM files, checked once when the config is validated: the
//! rest of the gateway only ever sees material that parsed and matched.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The one crypto provider the gateway uses (ring: builds without cmake or nasm).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain with its private key, checked to match.
#[derive(Debug, Clone)]
pub struct CertKey {
    /// The chain and signing key, as rustls uses them.
    pub certified: Arc<CertifiedKey>,
    /// DNS names the leaf certificate is valid for (subject alternative names, lower case),
    /// used to pick a certificate by SNI.
    pub names: Vec<String>,
    /// SHA-256 of the cert and key files' bytes: tells a changed file from an unchanged one.
    pub digest: [u8; 32],
}

/// Read a file, with the error an operator can act on.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// Every certificate in a PEM file, in order (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>), String> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{}` is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "no certificate in `{}` (expected PEM `-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    for (i, cert) in certs.iter().enumerate() {
        if let Err(e) = x509_parser::parse_x509_certificate(cert) {
            return Err(format!(
                "certificate {} in `{}` cannot be parsed: {e}",
                i + 1,
                path.display()
            ));
        }
    }
    Ok((certs, bytes))
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<(PrivateKeyDer<'static>, Vec<u8>), String> {
    let bytes = read(path)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!(
            "no private key in `{}` (expected PEM `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
            path.display()
        ),
        other => format!("`{}` is not valid PEM: {other}", path.display()),
    })?;
    Ok((key, bytes))
}

/// A certificate chain and its key. Errors are `(which, message)` with `which` = `"cert"` or
/// `"key"`, so the caller can point at the right TOML field.
pub fn load_cert_key(cert: &Path, key: &Path) -> Result<CertKey, (&'static str, String)> {
    let (chain, cert_bytes) = load_certs(cert).map_err(|e| ("cert", e))?;
    let (key_der, key_bytes) = load_key(key).map_err(|e| ("key", e))?;
    let signing = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| {
            (
                "key",
                format!("`{}` is not a usable private key: {e}", key.display()),
            )
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err((
                "key",
                format!(
                    "the key in `{}` does not match the certificate in `{}`",
                    key.display(),
                    cert.display()
                ),
            ));
        }
    }
    let names = certified
        .cert
        .first()
        .map(|leaf| super::identity::dns_names(leaf))
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(&cert_bytes);
    hasher.update(&key_bytes);
    Ok(CertKey {
        certified: Arc::new(certified),
        names,
        digest: hasher.finalize().into(),
    })
}

/// A CA bundle: every certificate in the file becomes a trust anchor.
#[derive(Debug, Clone)]
pub struct CaBundle {
    /// The trust anchors.
    pub roots: Arc<RootCertStore>,
    /// SHA-256 of the file's bytes.
    pub digest: [u8; 32],
}

/// Read a CA bundle.
pub fn load_ca(path: &Path) -> Result<CaBundle, String> {
    let (certs, bytes) = load_certs(path)?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "certificate {} in `{}` is not a usable CA certificate: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(CaBundle {
        roots: Arc::new(roots),
        digest: Sha256::digest(&bytes).into(),
    })
}
