//! Compiled components, cached by content: in memory for hot swaps within a process (the last
//! [`MEMORY_ENTRIES`]), and on disk as `<cache_dir>/<hex>.cwasm` so restarts skip Cranelift
//! (~22 ms a plugin → ~50 µs by mmap). When the binary asks for it, a missing artifact is
//! compiled in a child process (`compile_process`) and then mapped like a cached one.
//!
//! The key is sha256(component bytes ‖ the engine's precompile-compatibility hash), so a
//! different wasmtime version or engine configuration never loads a stale artifact.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::compile_process::{self, ChildFailure};

/// Where a loaded plugin's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Already compiled in this process.
    Memory,
    /// Loaded from a `.cwasm` file in the cache directory.
    Disk,
    /// Compiled now (and written to the cache directory when there is one).
    Compiled,
}

/// Feeds `Hash` output into sha256, to turn the engine's compatibility hash into stable bytes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The compile cache of one engine.
pub(crate) struct CompileCache {
    engine: Engine,
    dir: Option<PathBuf>,
    engine_hash: [u8; 32],
    /// How a child compiler builds the same engine (`compile_process`).
    engine_args: Vec<String>,
    memory: Mutex<Recent>,
}

/// Compiled components kept in memory: a process that swaps in new plugin versions all day
/// must not keep every version it ever loaded (the disk cache still has them).
const MEMORY_ENTRIES: usize = 64;

/// The last [`MEMORY_ENTRIES`] components loaded, by key.
#[derive(Default)]
struct Recent {
    by_key: HashMap<[u8; 32], Component>,
    oldest_first: VecDeque<[u8; 32]>,
}

impl Recent {
    fn get(&self, key: &[u8; 32]) -> Option<Component> {
        self.by_key.get(key).cloned()
    }

    fn insert(&mut self, key: [u8; 32], component: Component) {
        if self.by_key.insert(key, component).is_some() {
            return;
        }
        self.oldest_first.push_back(key);
        while self.oldest_first.len() > MEMORY_ENTRIES {
            if let Some(old) = self.oldest_first.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }
}

impl CompileCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>, engine_args: Vec<String>) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            engine: engine.clone(),
            dir,
            engine_hash: hasher.0.finalize().into(),
            engine_args,
            memory: Mutex::new(Recent::default()),
        }
    }

    /// The compiled component for these bytes (whose sha256 is `content_hash`). Compiling and
    /// file I/O run on the blocking pool, never on a request worker.
    pub(crate) async fn get(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        content_hash: [u8; 32],
    ) -> Result<(Component, CompileSource), String> {
        let key: [u8; 32] = Sha256::new()
            .chain_update(content_hash)
            .chain_update(self.engine_hash)
            .finalize()
            .into();
        if let Some(c) = self.memory.lock().ok().and_then(|m| m.get(&key)) {
            return Ok((c, CompileSource::Memory));
        }
        let this = Arc::clone(self);
        let (component, source) =
            tokio::task::spawn_blocking(move || this.load_or_compile(&bytes, &key))
                .await
                .map_err(|e| format!("compile task failed: {e}"))??;
        if let Ok(mut m) = self.memory.lock() {
            m.insert(key, component.clone());
        }
        Ok((component, source))
    }

    fn load_or_compile(
        &self,
        bytes: &[u8],
        key: &[u8; 32],
    ) -> Result<(Component, CompileSource), String> {
        let Some(dir) = &self.dir else {
            return self.compile(bytes).map(|c| (c, CompileSource::Compiled));
        };
        let path = dir.join(format!("{}.cwasm", hex(key)));
        if path.is_file() {
            match deserialize_cached(&self.engine, &path) {
                Ok(c) => return Ok((c, CompileSource::Disk)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "recompiling: bad cache file: {e:#}")
                }
            }
        }
        if let Some(compiler) = compile_process::compiler() {
            match self.compile_in_child(compiler, dir, &path, bytes) {
                Ok(component) => return Ok((component, CompileSource::Compiled)),
                Err(ChildFailure::Rejected(message)) => return Err(message),
                Err(ChildFailure::Unavailable(message)) => {
                    tracing::warn!("compiling in process: the compiler process failed: {message}")
                }
            }
        }
        let component = self.compile(bytes)?;
        if let Err(e) = write_atomically(dir, &path, &component) {
            tracing::warn!(path = %path.display(), "cannot write compile cache: {e}");
        }
        Ok((component, CompileSource::Compiled))
    }

    /// Compile in a child process into the cache file `path`, then map that file.
    fn compile_in_child(
        &self,
        compiler: &compile_process::Compiler,
        dir: &Path,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Component, ChildFailure> {
        let unavailable = |e: std::io::Error| ChildFailure::Unavailable(e.to_string());
        write_into_place(dir, path, unavailable, |tmp| {
            compile_process::compile(compiler, &self.engine_args, bytes, tmp)
        })?;
        deserialize_cached(&self.engine, path)
            .map_err(|e| ChildFailure::Unavailable(format!("{e:#}")))
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component, String> {
        Component::new(&self.engine, bytes).map_err(|e| format!("{e:#}"))
    }
}

/// Load a `.cwasm` by mmap.
#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be a wasmtime artifact produced by this
    // engine configuration and not modified while mapped. The file lives in our own cache
    // directory, was written by us through a temp file + rename (so never observed half
    // written), and its name is keyed by the content hash plus the engine's compatibility hash;
    // wasmtime additionally checks the header against the engine and errors on a mismatch.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(dir: &Path, path: &Path, component: &Component) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let message = |e: std::io::Error| e.to_string();
    write_into_place(dir, path, message, |tmp| {
        std::fs::write(tmp, &bytes).map_err(message)
    })
}

/// Have `write` make the file at a fresh temp name in `dir`, then rename it to `path`, so that
/// no reader ever maps a half-written artifact; the temp file is removed when either step fails.
fn write_into_place<E>(
    dir: &Path,
    path: &Path,
    io_error: impl Fn(std::io::Error) -> E,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    std::fs::create_dir_all(dir).map_err(&io_error)?;
    let tmp = temp_path(dir);
    let written = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(&io_error));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A fresh name in `dir` for a file written before it is renamed into place.
fn temp_path(dir: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{}.{seq}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn memory_keeps_only_the_most_recent_components() {
        let engine = Engine::default();
        // The smallest valid component: its preamble alone.
        let component = Component::new(&engine, b"\0asm\x0d\0\x01\0").unwrap();
        let mut recent = Recent::default();
        let key = |i: usize| {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&i.to_le_bytes());
            k
        };
        for i in 0..MEMORY_ENTRIES + 10 {
            recent.insert(key(i), component.clone());
            recent.insert(key(i), component.clone()); // a reload of the same version
        }
        assert_eq!(recent.by_key.len(), MEMORY_ENTRIES);
        assert_eq!(recent.oldest_first.len(), MEMORY_ENTRIES);
        assert!(recent.get(&key(9)).is_none());
        assert!(recent.get(&key(10)).is_some());
        assert!(recent.get(&key(MEMORY_ENTRIES + 9)).is_some());
    }
}
