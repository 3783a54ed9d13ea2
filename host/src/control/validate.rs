//! Validating a pushed config with the code of `tollgate check` (`gateway::check`): the config
//! is written into a work directory beside the modules it names, stored by SHA-256 as
//! `modules/<sha256>.wasm`, and checked there, every plugin's `init` included. The
//! `module = "modules/<sha256>.wasm"` form is what `tollgate ctl apply` writes and what the
//! gateways find again in their state directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::http::ApiError;
use super::store::Store;
use crate::config::ConfigIssue;

/// The modules a config names (`modules/<sha256>.wasm`), as hashes, with the TOML path of each
/// `module` key; the issues of entries in another form.
pub fn module_refs(config: &str) -> (Vec<(String, String)>, Vec<ConfigIssue>) {
    let mut refs = Vec::new();
    let mut issues = Vec::new();
    let Ok(doc) = config.parse::<toml_edit::DocumentMut>() else {
        // A syntax error: the checker reports it with its line and column.
        return (refs, issues);
    };
    let Some(plugins) = doc.get("plugins").and_then(|p| p.as_table_like()) else {
        return (refs, issues);
    };
    for (name, entry) in plugins.iter() {
        let canary = entry.get("canary").and_then(|c| c.get("module"));
        let modules = [
            (format!("plugins.{name}.module"), entry.get("module")),
            (format!("plugins.{name}.canary.module"), canary),
        ];
        for (path, module) in modules {
            let Some(module) = module.and_then(|m| m.as_str()) else {
                continue;
            };
            match module_hash(module) {
                Some(hash) => refs.push((path, hash.to_owned())),
                None => issues.push(ConfigIssue {
                    path,
                    message: format!(
                        "`{module}`: the control plane serves modules by hash; push the config with `tollgate ctl apply`, which uploads each module and names it `modules/<sha256>.wasm`"
                    ),
                }),
            }
        }
    }
    (refs, issues)
}

/// The hash in `modules/<64 hex>.wasm`.
pub fn module_hash(module: &str) -> Option<&str> {
    let hash = module.strip_prefix("modules/")?.strip_suffix(".wasm")?;
    (hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(hash)
}

/// Checks configs in a work directory holding the stored modules.
pub struct Validator {
    dir: PathBuf,
    next: AtomicU64,
}

impl Validator {
    /// Use `dir` (created when absent) for candidates and module files.
    pub fn new(dir: &Path) -> std::io::Result<Validator> {
        std::fs::create_dir_all(dir.join("modules"))?;
        Ok(Validator {
            dir: dir.to_owned(),
            next: AtomicU64::new(0),
        })
    }

    /// Validate `config` as `tollgate check` would, every error with its TOML path.
    pub async fn check(&self, store: &Store, config: &str) -> Result<(), ApiError> {
        let (refs, mut issues) = module_refs(config);
        for (path, hash) in &refs {
            if !self.materialise(store, hash, config).await? {
                issues.push(ConfigIssue {
                    path: path.clone(),
                    message: format!(
                        "module {hash} is not stored: upload it first (PUT /v1/modules/{hash})"
                    ),
                });
            }
        }
        if !issues.is_empty() {
            return Err(ApiError::InvalidConfig(issues));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let file = self
            .dir
            .join(format!("candidate-{}-{n}.toml", std::process::id()));
        std::fs::write(&file, config)
            .map_err(|e| ApiError::Internal(format!("cannot write {}: {e}", file.display())))?;
        let result = crate::gateway::check(&file).await;
        let _ = std::fs::remove_file(&file);
        result
            .map(|_| ())
            .map_err(|e| ApiError::InvalidConfig(e.issues()))
    }

    /// Make `modules/<hash>.wasm` exist in the work directory, with the stored signature a
    /// gateway on `config` would keep beside it (so `[gateway] require_signatures` is checked as
    /// a gateway will); `false` when the module is not stored.
    async fn materialise(&self, store: &Store, hash: &str, config: &str) -> Result<bool, ApiError> {
        let file = self.dir.join("modules").join(format!("{hash}.wasm"));
        let io = |file: &Path, e: std::io::Error| {
            ApiError::Internal(format!("cannot write {}: {e}", file.display()))
        };
        if !file.exists() {
            let Some(bytes) = store.module(hash).await? else {
                return Ok(false);
            };
            write_atomic(&file, &bytes).map_err(|e| io(&file, e))?;
        }
        let sig = crate::signing::signature_path(&file);
        let files = store.signatures(hash).await?;
        match super::pick_signature(config, &files) {
            Some(text) => write_atomic(&sig, text.as_bytes()).map_err(|e| io(&sig, e))?,
            None => match std::fs::remove_file(&sig) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&sig, e)),
                _ => {}
            },
        }
        Ok(true)
    }
}

/// Write a file by writing a temporary beside it and renaming it over: readers see the old or
/// the new content, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
