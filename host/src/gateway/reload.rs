//! What a reload reads and reports: the digest of its inputs (config bytes, plugin modules, TLS
//! files), so a reload whose inputs did not change is skipped, the report of a reload, and the
//! warnings about changes that need a restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{self, Config, ConfigError};

/// What a successful reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Nothing it reads changed (config bytes, modules, TLS files): nothing was done.
    pub unchanged: bool,
    /// Plugin instances loaded anew (changed module, config or limits).
    pub loaded: usize,
    /// Plugin instances kept as they were, warm pools included.
    pub reused: usize,
    /// Routes now served.
    pub routes: usize,
    /// Time from reading the config to the swap, in milliseconds.
    pub millis: f64,
    /// Changes that need a restart to take effect (listeners).
    pub warnings: Vec<String>,
}

/// The SHA-256 of everything a reload reads: the config file's bytes and the content of every
/// file it names (plugin modules, certificates, keys and CAs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inputs([u8; 32]);

impl Inputs {
    /// Read `files` and digest them with the config text. An unreadable file digests as its
    /// error, so it differs from any content (and the reload that follows reports it).
    pub(super) async fn read(config_text: &str, files: &[PathBuf]) -> Inputs {
        let mut h = Sha256::new();
        h.update((config_text.len() as u64).to_le_bytes());
        h.update(config_text.as_bytes());
        for file in files {
            let path = file.as_os_str().as_encoded_bytes();
            h.update((path.len() as u64).to_le_bytes());
            h.update(path);
            match tokio::fs::read(file).await {
                Ok(bytes) => {
                    h.update([1]);
                    h.update(Sha256::digest(&bytes));
                }
                Err(e) => {
                    h.update([0]);
                    h.update(e.kind().to_string().as_bytes());
                }
            }
        }
        Inputs(h.finalize().into())
    }
}

/// Read the config file's text (what [`config::load`] reads) and validate it.
pub(super) fn read_config(path: &Path) -> Result<(String, Config), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let config = config::parse(&text, path)?;
    Ok((text, config))
}

/// Files a config names whose content a reload reads: plugin modules, then the certificate, key
/// and CA files of listeners and upstreams.
pub(super) fn named_files(config: &Config) -> Vec<PathBuf> {
    let modules = config.plugins.values().map(|p| p.module.clone());
    let listeners = config.listeners.iter().filter_map(|l| l.tls.as_ref());
    let upstreams = config.upstreams.values().filter_map(|u| u.tls.as_ref());
    modules
        .chain(listeners.flat_map(|t| t.files.iter().cloned()))
        .chain(upstreams.flat_map(|t| t.files.iter().cloned()))
        .collect()
}

/// Changes from `old` to `new` that a reload cannot apply (they need a restart).
pub(super) fn restart_warnings(old: &Config, new: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let addrs = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| l.addr)
            .collect::<Vec<SocketAddr>>()
    };
    if addrs(old) != addrs(new) {
        warnings.push("listener changes take effect after a restart".to_owned());
    }
    let admin = |c: &Config| c.admin.as_ref().map(|a| (a.addr, a.token.clone()));
    if admin(old) != admin(new) {
        warnings.push("admin listener and token changes take effect after a restart".to_owned());
    }
    if old.server != new.server {
        warnings.push("[server] changes take effect after a restart".to_owned());
    }
    if old.state != new.state {
        warnings.push("[state] changes take effect after a restart".to_owned());
    }
    if old.telemetry != new.telemetry {
        warnings.push("[telemetry] changes take effect after a restart".to_owned());
    }
    // Per listener: TLS or not, and the plain-HTTP policy.
    let modes = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.tls.is_some(), l.plain_http))
            .collect::<Vec<_>>()
    };
    if modes(old) != modes(new) {
        warnings.push(
            "turning TLS on or off and plain_http changes take effect after a restart".to_owned(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inputs_change_with_config_bytes_and_file_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("m.wasm");
        std::fs::write(&module, b"one").expect("write");
        let files = vec![module.clone()];
        let a = Inputs::read("x = 1", &files).await;
        assert_eq!(a, Inputs::read("x = 1", &files).await, "same inputs");
        assert_ne!(a, Inputs::read("x = 2", &files).await, "config bytes");
        std::fs::write(&module, b"two").expect("write");
        let b = Inputs::read("x = 1", &files).await;
        assert_ne!(a, b, "module content");
        std::fs::remove_file(&module).expect("remove");
        assert_ne!(b, Inputs::read("x = 1", &files).await, "module gone");
    }
}
