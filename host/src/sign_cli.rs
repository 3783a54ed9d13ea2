//! `tollgate plugin keygen`, `plugin sign` and `plugin verify` (part of the binary): Ed25519
//! keys and detached module signatures (see `tollgate::signing` and docs/rollout.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sha2::{Digest, Sha256};
use tollgate::signing::{self, TrustedKey};

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The public key file beside a private key: `KEY.pem` → `KEY.pub`.
fn public_path(private: &Path) -> PathBuf {
    private.with_extension("pub")
}

/// `tollgate plugin keygen OUT.pem`: a new key pair, `OUT.pem` (private, mode 0600 on Unix)
/// and `OUT.pub`. Refuses to overwrite a key.
pub fn keygen(out: &Path) -> ExitCode {
    let public_out = public_path(out);
    for path in [out, public_out.as_path()] {
        if path.exists() {
            return fail(format!("{} exists; not overwriting a key", path.display()));
        }
    }
    let (private, public) = match signing::generate() {
        Ok(pair) => pair,
        Err(e) => return fail(e),
    };
    if let Err(e) = write_private(out, &private) {
        return fail(format!("cannot write {}: {e}", out.display()));
    }
    if let Err(e) = std::fs::write(&public_out, &public) {
        return fail(format!("cannot write {}: {e}", public_out.display()));
    }
    let id = TrustedKey::from_pem(&public)
        .map(|k| k.id().to_owned())
        .unwrap_or_default();
    println!(
        "key {id}: private {} public {}",
        out.display(),
        public_out.display()
    );
    ExitCode::SUCCESS
}

#[cfg(unix)]
fn write_private(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(pem.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, pem: &str) -> std::io::Result<()> {
    std::fs::write(path, pem)
}

/// `tollgate plugin sign --key KEY.pem MODULE.wasm`: write `MODULE.wasm.sig`.
pub fn sign(key: &Path, module: &Path) -> ExitCode {
    let private = match read_text(key) {
        Ok(text) => text,
        Err(e) => return fail(e),
    };
    let bytes = match std::fs::read(module) {
        Ok(bytes) => bytes,
        Err(e) => return fail(format!("cannot read {}: {e}", module.display())),
    };
    let file = match signing::sign(&private, &bytes) {
        Ok(file) => file,
        Err(e) => return fail(format!("{}: {e}", key.display())),
    };
    let out = signing::signature_path(module);
    let text = match serde_json::to_string_pretty(&file) {
        Ok(text) => text + "\n",
        Err(e) => return fail(e),
    };
    if let Err(e) = std::fs::write(&out, text) {
        return fail(format!("cannot write {}: {e}", out.display()));
    }
    println!(
        "signed {} (sha256 {}) with key {}: {}",
        module.display(),
        file.sha256,
        file.key_id,
        out.display()
    );
    ExitCode::SUCCESS
}

/// `tollgate plugin verify --key KEY.pub [--key ...] MODULE.wasm`: exit 0 when `MODULE.wasm.sig`
/// is a valid signature of the module by one of the keys.
pub fn verify(keys: &[PathBuf], module: &Path) -> ExitCode {
    let mut trusted = Vec::new();
    for path in keys {
        match read_text(path).and_then(|pem| {
            TrustedKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
        }) {
            Ok(key) => trusted.push(key),
            Err(e) => return fail(e),
        }
    }
    let bytes = match std::fs::read(module) {
        Ok(bytes) => bytes,
        Err(e) => return fail(format!("cannot read {}: {e}", module.display())),
    };
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    match signing::verify(module, &digest, &trusted) {
        Ok(id) => {
            println!("{}: signed by trusted key {id}", module.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("module `{}` {e}", module.display())),
    }
}
