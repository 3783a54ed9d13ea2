//! `tollgate check`: validate a config and load every plugin once without serving, and the
//! warnings about settings that load but weaken the gateway.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::assemble::{build, new_runtime};
use super::error::GatewayError;
use super::provenance::Revision;
use super::rollout::CanaryRegistry;
use crate::chain::NoFetcher;
use crate::config::{self, Config};

/// Validate a config and load every plugin once (compile and `init` with its config), without
/// serving. Returns a one-line summary, then one `warning: ...` line per risky setting.
pub async fn check(path: &Path) -> Result<String, GatewayError> {
    let config = config::load(path)?;
    let runtime = new_runtime(&config, Arc::new(NoFetcher))?;
    build(
        &runtime,
        &config,
        &HashMap::new(),
        Revision::local(1),
        &CanaryRegistry::default(),
    )
    .await?;
    let mut out = format!(
        "{} listener(s), {} upstream(s), {} plugin(s), {} route(s)",
        config.listeners.len(),
        config.upstreams.len(),
        config.plugins.len(),
        config.routes.len()
    );
    for warning in check_warnings(&config) {
        out.push_str("\nwarning: ");
        out.push_str(&warning);
    }
    Ok(out)
}

/// Settings that load but weaken the gateway: access-control plugins that let requests through
/// when they fail.
pub fn check_warnings(config: &Config) -> Vec<String> {
    const ACCESS_CONTROL: [&str; 3] = ["auth", "rbac", "ip_filter"];
    config
        .plugins
        .values()
        .filter(|spec| spec.on_error == config::OnError::FailOpen)
        .filter_map(|spec| {
            let stem = spec.module.file_stem()?.to_str()?.replace('-', "_");
            ACCESS_CONTROL.contains(&stem.as_str()).then(|| {
                format!(
                    "plugin `{}` ({stem}) is on_error = \"fail-open\": when it traps or times out, requests pass without its check",
                    spec.name
                )
            })
        })
        .collect()
}
