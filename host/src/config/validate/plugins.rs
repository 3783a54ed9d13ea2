//! `[plugins.NAME]`: the module file, the config passed to `init`, sandbox limits and failure
//! policies, and the upstreams a plugin may fetch from.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Validator;
use super::validator::{check_name, known};
use crate::config::model::{Admin, OnError, PluginSpec, PluginVersion, Upstream};
use crate::config::raw::{RawOnError, RawPlugin};

/// Defaults for plugin entries.
/// Wall-clock deadline per plugin call. A warm call takes microseconds; the margin covers a
/// worker thread being descheduled on a busy machine, which the epoch clock also counts.
const DEFAULT_PLUGIN_TIMEOUT_MS: u64 = 100;
const DEFAULT_PLUGIN_MEMORY_MB: u64 = 32;
const DEFAULT_POOL_SIZE: usize = 2;
/// Most instances of one plugin alive at once (warm and busy), so one slow plugin cannot take
/// every slot of the runtime's pool.
const DEFAULT_MAX_INSTANCES: usize = 64;

impl Validator<'_> {
    /// `[plugins.NAME]` entries by name; an entry with a wrong shape or missing module is left
    /// out. `fetch` must name upstreams in `upstreams`.
    pub(super) fn plugins(
        &mut self,
        value: Option<toml::Value>,
        plugin_dir: &Path,
        upstreams: &BTreeMap<String, Upstream>,
    ) -> BTreeMap<String, PluginSpec> {
        let mut out = BTreeMap::new();
        for (name, value) in self.entries("plugins", value) {
            let path = format!("plugins.{name}");
            check_name(self.issues, &path, &name);
            let Some(raw) = self.de::<RawPlugin>(&path, value) else {
                continue;
            };
            if let Some(spec) = self.plugin(&path, &name, raw, plugin_dir, upstreams) {
                out.insert(name, spec);
            }
        }
        out
    }

    /// One `[plugins.NAME]` entry; `None` when its module or its config cannot be used.
    fn plugin(
        &mut self,
        path: &str,
        name: &str,
        raw: RawPlugin,
        plugin_dir: &Path,
        upstreams: &BTreeMap<String, Upstream>,
    ) -> Option<PluginSpec> {
        let fetch = raw.fetch.unwrap_or_default();
        for (j, upstream) in fetch.iter().enumerate() {
            if !upstreams.contains_key(upstream) {
                self.issues.push(
                    format!("{path}.fetch[{j}]"),
                    format!("unknown upstream `{upstream}`{}", known(upstreams.keys())),
                );
            }
        }
        let module = match self.module_path(&raw.module, plugin_dir) {
            Ok(m) => m,
            Err(why) => {
                self.issues.push(format!("{path}.module"), why);
                return None;
            }
        };
        let config_json = match serde_json::to_string(&raw.config.unwrap_or_default()) {
            Ok(json) => json,
            Err(e) => {
                self.issues.push(
                    format!("{path}.config"),
                    format!("cannot be passed to the plugin: {e}"),
                );
                return None;
            }
        };
        let timeout = self.millis(
            path,
            "timeout_ms",
            raw.timeout_ms,
            DEFAULT_PLUGIN_TIMEOUT_MS,
        );
        let memory_mb = self.plugin_memory_mb(path, raw.memory_limit_mb);
        let (pool_size, max_instances) = self.plugin_pool(path, raw.pool_size, raw.max_instances);
        let canary = match raw.canary {
            Some(c) => Some(Arc::new(self.canary(
                &format!("{path}.canary"),
                c,
                plugin_dir,
            )?)),
            None => None,
        };
        Some(PluginSpec {
            canary,
            version: PluginVersion::Stable,
            name: Arc::from(name),
            module,
            config_json,
            on_error: on_error(raw.on_error),
            on_state_error: on_error(raw.on_state_error),
            timeout,
            memory_limit: (memory_mb as usize) * 1024 * 1024,
            pool_size,
            max_instances,
            fetch,
        })
    }

    /// The module path and config JSON of an entry (`path`), or `None` after an issue.
    pub(super) fn module_and_config(
        &mut self,
        path: &str,
        module: &str,
        config: Option<toml::Table>,
        plugin_dir: &Path,
    ) -> Option<(PathBuf, String)> {
        let module = match self.module_path(module, plugin_dir) {
            Ok(m) => m,
            Err(why) => {
                self.issues.push(format!("{path}.module"), why);
                return None;
            }
        };
        match serde_json::to_string(&config.unwrap_or_default()) {
            Ok(json) => Some((module, json)),
            Err(e) => {
                self.issues.push(
                    format!("{path}.config"),
                    format!("cannot be passed to the plugin: {e}"),
                );
                None
            }
        }
    }

    /// `memory_limit_mb`: from 1 MiB to 4 GiB.
    fn plugin_memory_mb(&mut self, path: &str, memory_limit_mb: Option<u64>) -> u64 {
        match memory_limit_mb {
            Some(0) => {
                self.issues
                    .push(format!("{path}.memory_limit_mb"), "must be greater than 0");
                DEFAULT_PLUGIN_MEMORY_MB
            }
            Some(mb) if mb > 4096 => {
                self.issues.push(
                    format!("{path}.memory_limit_mb"),
                    "must be at most 4096 (4 GiB)",
                );
                DEFAULT_PLUGIN_MEMORY_MB
            }
            Some(mb) => mb,
            None => DEFAULT_PLUGIN_MEMORY_MB,
        }
    }

    /// `pool_size` (at least 1) and `max_instances` (at least `pool_size`).
    fn plugin_pool(
        &mut self,
        path: &str,
        pool_size: Option<usize>,
        max_instances: Option<usize>,
    ) -> (usize, usize) {
        let pool_size = match pool_size {
            Some(0) => {
                self.issues
                    .push(format!("{path}.pool_size"), "must be at least 1");
                DEFAULT_POOL_SIZE
            }
            Some(n) => n,
            None => DEFAULT_POOL_SIZE,
        };
        let max_instances = match max_instances {
            Some(n) if n < pool_size => {
                self.issues.push(
                    format!("{path}.max_instances"),
                    format!("must be at least pool_size ({pool_size})"),
                );
                pool_size
            }
            Some(n) => n,
            None => DEFAULT_MAX_INSTANCES.max(pool_size),
        };
        (pool_size, max_instances)
    }

    /// Plugins may never fetch from the admin listener, nor from a link-local target unless its
    /// upstream sets `allow_link_local`. Literal addresses are refused here; every fetch checks
    /// the resolved address again (`proxy::fetch`), which also covers host names.
    pub(super) fn fetch_targets(
        &mut self,
        plugins: &BTreeMap<String, PluginSpec>,
        upstreams: &BTreeMap<String, Upstream>,
        admin: Option<&Admin>,
    ) {
        for (name, spec) in plugins {
            for (j, upstream) in spec.fetch.iter().enumerate() {
                let Some(u) = upstreams.get(upstream) else {
                    continue;
                };
                for target in &u.targets {
                    let Ok(addr) = target.parse::<SocketAddr>() else {
                        continue;
                    };
                    let ip = addr.ip().to_canonical();
                    let is_admin = admin.is_some_and(|a| {
                        a.addr.port() != 0
                            && a.addr.port() == addr.port()
                            && (ip == a.addr.ip().to_canonical() || ip.is_unspecified())
                    });
                    let link_local = match ip {
                        IpAddr::V4(v4) => v4.is_link_local(),
                        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
                    };
                    let why = if is_admin {
                        format!(
                            "upstream `{upstream}` targets the admin listener ({target}); plugins \
                             may not fetch from it"
                        )
                    } else if link_local && !u.allow_link_local {
                        format!(
                            "upstream `{upstream}` targets the link-local address {target}; set \
                             `allow_link_local = true` on upstreams.{upstream} to let plugins \
                             fetch from it"
                        )
                    } else {
                        continue;
                    };
                    self.issues.push(format!("plugins.{name}.fetch[{j}]"), why);
                }
            }
        }
    }

    /// `module` is a built-in name (`headers`, `ip-filter`) found in the plugin directory, or a
    /// path to a `.wasm` file relative to the config file.
    fn module_path(&self, module: &str, plugin_dir: &Path) -> Result<PathBuf, String> {
        let is_path = module.contains('/') || module.ends_with(".wasm");
        let file = if is_path {
            self.base.join(module)
        } else if !module.is_empty()
            && module
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            plugin_dir.join(format!("{}.wasm", module.replace('-', "_")))
        } else {
            return Err(format!(
                "`{module}` is neither a built-in plugin name nor a path to a .wasm file"
            ));
        };
        if file.is_file() {
            Ok(file)
        } else if is_path {
            Err(format!("module file `{}` does not exist", file.display()))
        } else {
            Err(format!(
                "built-in plugin `{module}` not found at `{}` (build the plugins with scripts/build-plugins.sh)",
                file.display()
            ))
        }
    }
}

/// `on_error` / `on_state_error`: fail closed unless `"fail-open"`.
fn on_error(raw: Option<RawOnError>) -> OnError {
    match raw {
        Some(RawOnError::FailOpen) => OnError::FailOpen,
        Some(RawOnError::FailClosed) | None => OnError::FailClosed,
    }
}
