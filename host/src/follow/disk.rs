//! What a following gateway keeps in its state directory, so it serves its last good revision
//! when the control plane is down, across its own restarts too: `gateway.toml` (the revision it
//! serves), `modules/<sha256>.wasm` (with its `.sig` when signed), `revision.json` (which revision that is) and `keys.json`
//! (the last key table). Every file is written atomically (temporary file, then rename).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::control::write_atomic;

/// The state directory's files.
#[derive(Debug, Clone)]
pub struct Disk {
    dir: PathBuf,
}

/// `revision.json`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Applied {
    /// The revision `gateway.toml` holds.
    pub revision: i64,
}

impl Disk {
    /// The directory (created with `modules/` when absent).
    pub fn open(dir: &Path) -> std::io::Result<Disk> {
        std::fs::create_dir_all(dir.join("modules"))?;
        Ok(Disk {
            dir: dir.to_owned(),
        })
    }

    /// The config file the gateway serves.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("gateway.toml")
    }

    /// A module's file.
    pub fn module_path(&self, hash: &str) -> PathBuf {
        self.dir.join("modules").join(format!("{hash}.wasm"))
    }

    /// The revision on disk, when there is one (config and its record).
    pub fn applied(&self) -> Option<Applied> {
        if !self.config_path().exists() {
            return None;
        }
        let text = std::fs::read_to_string(self.dir.join("revision.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Record `revision` as the one `gateway.toml` holds.
    pub fn set_applied(&self, revision: i64) -> std::io::Result<()> {
        let text = serde_json::to_vec(&Applied { revision }).unwrap_or_default();
        write_atomic(&self.dir.join("revision.json"), &text)
    }

    /// Replace `gateway.toml`; returns what it held before.
    pub fn write_config(&self, text: &str) -> std::io::Result<Option<String>> {
        let old = std::fs::read_to_string(self.config_path()).ok();
        write_atomic(&self.config_path(), text.as_bytes())?;
        Ok(old)
    }

    /// Write a module file.
    pub fn write_module(&self, hash: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.module_path(hash), bytes)
    }

    /// Write a module's detached signature beside it, or remove a stale one (`None`).
    pub fn write_signature(&self, hash: &str, text: Option<&[u8]>) -> std::io::Result<()> {
        let path = crate::signing::signature_path(&self.module_path(hash));
        match text {
            Some(text) if std::fs::read(&path).ok().as_deref() == Some(text) => Ok(()),
            Some(text) => write_atomic(&path, text),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// The last key table, JSON text.
    pub fn keys(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("keys.json")).ok()
    }

    /// Keep the key table.
    pub fn write_keys(&self, json: &str) -> std::io::Result<()> {
        write_atomic(&self.dir.join("keys.json"), json.as_bytes())
    }
}
