//! What `tollgate ctl apply` sends: the config text with every `module = ...` replaced by the
//! module's content address, `modules/<sha256>.wasm`, and the module files to upload with their
//! detached signatures (`<module>.sig`, when present). Built-in names and paths resolve as the
//! gateway resolves them (`[gateway] plugin_dir`, relative to the config file). Key files named
//! in `[gateway] trusted_keys` are written into the config as PEM text, since gateways receive
//! the config but not the files beside it. The rest of the file is kept as written, comments
//! included.

use std::path::{Path, PathBuf};

use crate::config::{ConfigIssue, DEFAULT_PLUGIN_DIR};

/// A config ready to push.
pub struct Prepared {
    /// The config text, modules named by hash.
    pub text: String,
    /// Each module's hash and bytes, once per hash.
    pub modules: Vec<(String, Vec<u8>)>,
    /// The signature files found beside modules, by module hash.
    pub signatures: Vec<(String, Vec<u8>)>,
}

/// Read `path` and rewrite its modules; the issues (with TOML paths) when a module cannot be
/// read. A file that is not TOML is sent as it is: the control plane reports its syntax error.
pub fn prepare(path: &Path) -> Result<Prepared, Vec<ConfigIssue>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigIssue {
            path: String::new(),
            message: format!("cannot read `{}`: {e}", path.display()),
        }]
    })?;
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Ok(Prepared {
            text,
            modules: Vec::new(),
            signatures: Vec::new(),
        });
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    let plugin_dir = base.join(
        doc.get("gateway")
            .and_then(|g| g.get("plugin_dir"))
            .and_then(|d| d.as_str())
            .unwrap_or(DEFAULT_PLUGIN_DIR),
    );
    let mut modules = Modules::default();
    let mut issues = Vec::new();
    inline_trusted_keys(&mut doc, &base, &mut issues);
    if let Some(plugins) = doc.get_mut("plugins").and_then(|p| p.as_table_like_mut()) {
        for (name, entry) in plugins.iter_mut() {
            let name = name.get().to_owned();
            // The entry's module, and its canary's (`[plugins.NAME.canary] module`).
            if let Some(canary) = entry.get_mut("canary").and_then(|c| c.as_table_like_mut()) {
                let path = format!("plugins.{name}.canary.module");
                rewrite_module(canary, path, &base, &plugin_dir, &mut modules, &mut issues);
            }
            if let Some(table) = entry.as_table_like_mut() {
                let path = format!("plugins.{name}.module");
                rewrite_module(table, path, &base, &plugin_dir, &mut modules, &mut issues);
            }
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Prepared {
        text: doc.to_string(),
        modules: modules.files,
        signatures: modules.signatures,
    })
}

/// The modules read so far, once per hash, and their signature files.
#[derive(Default)]
struct Modules {
    files: Vec<(String, Vec<u8>)>,
    signatures: Vec<(String, Vec<u8>)>,
}

/// Replace each `[gateway] trusted_keys` entry that names a file by the file's PEM text.
fn inline_trusted_keys(
    doc: &mut toml_edit::DocumentMut,
    base: &Path,
    issues: &mut Vec<ConfigIssue>,
) {
    let Some(keys) = doc
        .get_mut("gateway")
        .and_then(|g| g.get_mut("trusted_keys"))
        .and_then(|k| k.as_array_mut())
    else {
        return;
    };
    for (i, entry) in keys.iter_mut().enumerate() {
        let Some(name) = entry.as_str() else { continue };
        if name.trim_start().starts_with("-----BEGIN") {
            continue;
        }
        let file = base.join(name);
        match std::fs::read_to_string(&file) {
            Ok(pem) => *entry = toml_edit::Value::from(pem),
            Err(e) => issues.push(ConfigIssue {
                path: format!("gateway.trusted_keys[{i}]"),
                message: format!("cannot read `{}`: {e}", file.display()),
            }),
        }
    }
}

/// Replace `table`'s `module` by its content address and keep the module's bytes, once per hash.
fn rewrite_module(
    table: &mut dyn toml_edit::TableLike,
    path: String,
    base: &Path,
    plugin_dir: &Path,
    modules: &mut Modules,
    issues: &mut Vec<ConfigIssue>,
) {
    let Some(module) = table
        .get("module")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
    else {
        return;
    };
    if crate::control::module_hash(&module).is_some() {
        return;
    }
    let file = module_file(&module, base, plugin_dir);
    match std::fs::read(&file) {
        Ok(bytes) => {
            let hash = crate::control::hash_bytes(&bytes);
            table.insert("module", toml_edit::value(format!("modules/{hash}.wasm")));
            if modules.files.iter().any(|(h, _)| *h == hash) {
                return;
            }
            if let Some(sig) = signature_of(&file, &hash) {
                modules.signatures.push((hash.clone(), sig));
            }
            modules.files.push((hash, bytes));
        }
        Err(e) => issues.push(ConfigIssue {
            path,
            message: format!("cannot read `{}`: {e}", file.display()),
        }),
    }
}

/// The signature file beside `module` (SHA-256 `hash`), when there is one over these bytes; one
/// over other bytes (the module was rebuilt after signing) is left out with a warning, so the
/// control plane judges the module as unsigned.
fn signature_of(module: &Path, hash: &str) -> Option<Vec<u8>> {
    let path = crate::signing::signature_path(module);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<crate::signing::SignatureFile>(&bytes) {
        Ok(file) if file.sha256 == hash => Some(bytes),
        Ok(_) => {
            eprintln!(
                "warning: `{}` is over other bytes than `{}` (changed after signing); not sent",
                path.display(),
                module.display()
            );
            None
        }
        Err(e) => {
            eprintln!(
                "warning: `{}` is not a signature file ({e}); not sent",
                path.display()
            );
            None
        }
    }
}

/// Where the gateway would find `module`: a path relative to the config, or a built-in name in
/// the plugin directory (`-` read as `_`).
fn module_file(module: &str, base: &Path, plugin_dir: &Path) -> PathBuf {
    if module.contains('/') || module.ends_with(".wasm") {
        base.join(module)
    } else {
        plugin_dir.join(format!("{}.wasm", module.replace('-', "_")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A config naming `m.wasm`, with `sig` beside it: what `prepare` sends.
    fn prepared_with(sig: &str) -> Prepared {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.wasm"), b"module bytes").unwrap();
        std::fs::write(dir.path().join("m.wasm.sig"), sig).unwrap();
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n";
        std::fs::write(dir.path().join("ops.pub"), pem).unwrap();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            "[gateway]\ntrusted_keys = [\"ops.pub\"]\n[plugins.p]\nmodule = \"m.wasm\"\n",
        )
        .unwrap();
        let p = prepare(&config).unwrap();
        assert!(p.text.contains("BEGIN PUBLIC KEY") && !p.text.contains("ops.pub"));
        p
    }

    #[test]
    fn a_signature_over_the_module_travels_and_a_stale_one_does_not() {
        let hash = crate::control::hash_bytes(b"module bytes");
        let good = format!(
            r#"{{"algorithm":"ed25519","key_id":"k","sha256":"{hash}","signature":"AA=="}}"#
        );
        assert_eq!(prepared_with(&good).signatures.len(), 1);
        let stale = good.replace(&hash, &"0".repeat(64));
        assert!(prepared_with(&stale).signatures.is_empty());
        assert!(prepared_with("not json").signatures.is_empty());
    }
}
