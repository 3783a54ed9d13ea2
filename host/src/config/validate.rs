//! Turns a parsed TOML document into a validated [`Config`], collecting every issue with its
//! TOML path before failing. Each section has a module of its own; `validator` holds the state
//! and helpers they share.

use std::path::Path;

use super::error::{ConfigError, Issues};
use super::model::Config;
use super::raw::TOP_LEVEL_KEYS;

mod access_log;
mod canary;
mod deprecation;
mod gateway;
mod limits;
mod listeners;
mod plugins;
mod resilience;
mod routes;
mod server;
mod state;
mod telemetry;
mod tls;
mod upstreams;
mod validator;

// Defined with the model it is the default of; `config::DEFAULT_PLUGIN_DIR` names it here too.
pub use super::model::DEFAULT_PLUGIN_DIR;
use validator::{Validator, check_target};

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parse and validate config text; `path` locates relative module and cache paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let mut issues = Issues::default();
    let config = Validator {
        issues: &mut issues,
        base,
    }
    .config(doc, path);
    match config {
        Some(config) if issues.0.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid {
            path: path.to_owned(),
            issues: issues.0,
        }),
    }
}

impl Validator<'_> {
    /// Every section of the document, in the order their issues are reported.
    fn config(&mut self, mut doc: toml::Table, source: &Path) -> Option<Config> {
        let unknown: Vec<String> = doc
            .keys()
            .filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.issues.push(
                key,
                format!(
                    "unknown section, expected one of: {}",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            );
        }

        let gateway = self.gateway(doc.remove("gateway"));

        let listeners = self.listeners(doc.remove("listeners"));
        let admin = self.admin(doc.remove("admin"));
        let limits = self.limits(doc.remove("limits"));
        let server = self.server(doc.remove("server"));
        let state = self.state(doc.remove("state"));
        let upstreams = self.upstreams(doc.remove("upstreams"));
        let plugins = self.plugins(doc.remove("plugins"), &gateway.plugin_dir, &upstreams);
        let routes = self.routes(doc.remove("routes"), &upstreams, &plugins);
        self.fetch_targets(&plugins, &upstreams, admin.as_ref());
        let access_log = self.access_log(doc.remove("access_log"));
        let telemetry = self.telemetry(doc.remove("telemetry"));

        Some(Config {
            source: source.to_owned(),
            gateway,
            listeners,
            admin,
            limits,
            server,
            state,
            upstreams,
            plugins,
            routes,
            access_log,
            telemetry,
        })
    }
}
