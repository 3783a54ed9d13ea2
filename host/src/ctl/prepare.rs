//! What `tollgate ctl apply` sends: the config text with every `module = ...` replaced by the
//! module's content address, `modules/<sha256>.wasm`, and the module files to upload. Built-in
//! names and paths resolve as the gateway resolves them (`[gateway] plugin_dir`, relative to the
//! config file); the rest of the file is kept as written, comments included.

use std::path::{Path, PathBuf};

use crate::config::{ConfigIssue, DEFAULT_PLUGIN_DIR};

/// A config ready to push.
pub struct Prepared {
    /// The config text, modules named by hash.
    pub text: String,
    /// Each module's hash and bytes, once per hash.
    pub modules: Vec<(String, Vec<u8>)>,
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
        });
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    let plugin_dir = base.join(
        doc.get("gateway")
            .and_then(|g| g.get("plugin_dir"))
            .and_then(|d| d.as_str())
            .unwrap_or(DEFAULT_PLUGIN_DIR),
    );
    let mut modules: Vec<(String, Vec<u8>)> = Vec::new();
    let mut issues = Vec::new();
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
        modules,
    })
}

/// Replace `table`'s `module` by its content address and keep the module's bytes, once per hash.
fn rewrite_module(
    table: &mut dyn toml_edit::TableLike,
    path: String,
    base: &Path,
    plugin_dir: &Path,
    modules: &mut Vec<(String, Vec<u8>)>,
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
            if !modules.iter().any(|(h, _)| *h == hash) {
                modules.push((hash, bytes));
            }
        }
        Err(e) => issues.push(ConfigIssue {
            path,
            message: format!("cannot read `{}`: {e}", file.display()),
        }),
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
