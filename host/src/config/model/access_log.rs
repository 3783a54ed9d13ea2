//! `[access_log]`: whether the JSON access log is on and where its lines go.

use std::path::PathBuf;

/// `[access_log]`: one JSON line per request, written off the request path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLogSettings {
    /// Off unless an `[access_log]` section exists (then on unless `enabled = false`).
    pub enabled: bool,
    /// Where lines go.
    pub destination: AccessLogDestination,
    /// Lines queued between requests and the writer; beyond, lines are dropped and counted.
    pub buffer: usize,
}

/// Where access log lines are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccessLogDestination {
    /// Standard output (default).
    #[default]
    Stdout,
    /// Standard error (shared with the gateway's own log).
    Stderr,
    /// Appended to this file (created when missing).
    File(PathBuf),
}
