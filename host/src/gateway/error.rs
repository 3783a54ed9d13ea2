//! Why a config could not be loaded or applied, and its issues as (TOML path, message) pairs.

use std::net::SocketAddr;

use crate::config::{self, ConfigError, ConfigIssue};

/// Why a config could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Some plugins could not be compiled or refused their config.
    #[error("plugins failed to load ({} error(s)):\n{}", .0.len(), config::render_issues(.0))]
    Plugins(Vec<ConfigIssue>),
    /// The routing table could not be built.
    #[error("cannot build the routing table: {0}")]
    Routing(String),
    /// The state backend could not be set up.
    #[error("cannot set up the state backend: {0}")]
    State(String),
    /// The Wasm runtime could not start.
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(String),
    /// TLS settings could not be applied.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The access log destination could not be opened.
    #[error("cannot open the access log: {0}")]
    AccessLog(String),
    /// The trace exporter (`[telemetry]`) could not be built.
    #[error("cannot start trace export: {0}")]
    Telemetry(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl GatewayError {
    /// Every issue as (TOML path, message), for JSON answers.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            GatewayError::Config(ConfigError::Invalid { issues, .. }) => issues.clone(),
            GatewayError::Plugins(issues) => issues.clone(),
            other => vec![ConfigIssue {
                path: String::new(),
                message: other.to_string(),
            }],
        }
    }
}
