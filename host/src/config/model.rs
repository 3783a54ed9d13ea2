//! The validated configuration. Built from the raw TOML types by `validate`; everything here has
//! been checked, so the rest of the gateway can use it without re-checking. [`Config`] is the
//! whole; each section's types have a module of their own.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod access_log;
mod deprecation;
mod gateway;
mod limits;
mod listeners;
mod plugins;
mod routes;
mod server;
mod state;
mod telemetry;
mod upstreams;

pub use access_log::{AccessLogDestination, AccessLogSettings};
pub use deprecation::{DEPRECATION, Deprecation, SUNSET, http_date, structured_date};
pub use gateway::{DEFAULT_IDENTITY_HEADERS, DEFAULT_PLUGIN_DIR, GatewaySettings, HeaderPattern};
pub use limits::Limits;
pub use listeners::{
    Admin, AdminToken, ClientAuth, Listener, ListenerTls, PlainHttp, TlsCertFiles,
};
pub use plugins::{CanarySpec, CanarySplit, OnError, PluginSpec, PluginVersion, RollbackRule};
pub use routes::{PathMatch, Route};
pub use server::{Http2Settings, ServerSettings};
pub use state::StateSettings;
pub use telemetry::TelemetrySettings;
pub use upstreams::{Balance, HealthCheck, PassiveHealth, RetryPolicy, Upstream, UpstreamTls};

/// A whole, valid gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub source: PathBuf,
    /// Gateway-wide settings.
    pub gateway: GatewaySettings,
    /// Listeners for client traffic.
    pub listeners: Vec<Listener>,
    /// The admin listener, if enabled.
    pub admin: Option<Admin>,
    /// Request limits.
    pub limits: Limits,
    /// Connection handling of the client-facing listeners: timeouts, connection cap, HTTP/2
    /// settings, shutdown drain.
    pub server: ServerSettings,
    /// Where plugins' shared state lives.
    pub state: StateSettings,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, Upstream>,
    /// Plugin instances by name.
    pub plugins: BTreeMap<String, PluginSpec>,
    /// Routes, in file order.
    pub routes: Vec<Route>,
    /// The JSON access log (`[access_log]`).
    pub access_log: AccessLogSettings,
    /// OTLP trace export (`[telemetry]`); `None` when the section is absent.
    pub telemetry: Option<TelemetrySettings>,
}
