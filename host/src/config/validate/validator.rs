//! The validator's state and what every section shares: deserializing a value with its TOML
//! path, named-entry tables, durations in milliseconds, and checks of names and targets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::config::error::Issues;

/// Collects issues while the sections are validated; `base` is the config file's directory,
/// against which relative paths are resolved.
pub(super) struct Validator<'a> {
    pub(super) issues: &'a mut Issues,
    pub(super) base: PathBuf,
}

impl Validator<'_> {
    /// Deserialize one value, reporting a failure at its full TOML path.
    pub(super) fn de<T: DeserializeOwned>(&mut self, path: &str, value: toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let inner = e.path().to_string();
                let full = match (path.is_empty(), inner == ".") {
                    (_, true) => path.to_owned(),
                    (true, false) => inner,
                    (false, false) if inner.starts_with('[') => format!("{path}{inner}"),
                    (false, false) => format!("{path}.{inner}"),
                };
                // The toml deserializer appends "in `field`" lines; the path already says where.
                let message = e.into_inner().to_string();
                let message: Vec<&str> = message
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("in `"))
                    .collect();
                self.issues
                    .push(full, message.join(" ").trim_end().to_owned());
                None
            }
        }
    }

    /// The entries of a `[section.NAME]` table, by name (none, with an issue, if it is not a table).
    pub(super) fn entries(
        &mut self,
        section: &str,
        value: Option<toml::Value>,
    ) -> BTreeMap<String, toml::Value> {
        match value {
            None => BTreeMap::new(),
            Some(toml::Value::Table(t)) => t.into_iter().collect(),
            Some(_) => {
                self.issues.push(
                    section,
                    format!("must be a table of named entries ([{section}.NAME])"),
                );
                BTreeMap::new()
            }
        }
    }

    /// `field` of `path` in milliseconds, which must not be 0; `default` when unset or wrong.
    pub(super) fn millis(
        &mut self,
        path: &str,
        field: &str,
        v: Option<u64>,
        default: u64,
    ) -> Duration {
        match v {
            Some(0) => {
                self.issues
                    .push(format!("{path}.{field}"), "must be greater than 0");
                Duration::from_millis(default)
            }
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_millis(default),
        }
    }
}

/// ` (defined: a, b)` or ` (none are defined)`, appended to an "unknown NAME" message.
pub(super) fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        " (none are defined)".to_owned()
    } else {
        format!(" (defined: {})", names.join(", "))
    }
}

/// Entry names (`[upstreams.NAME]`, `[plugins.NAME]`) use letters, digits, `-` and `_`.
pub(super) fn check_name(issues: &mut Issues, path: &str, name: &str) {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        issues.push(path, "names may only use letters, digits, `-` and `_`");
    }
}

/// A `host:port` target: an IP socket address, or a host name of letters, digits, `-` and `.`.
pub(super) fn check_target(target: &str) -> Result<(), String> {
    if target.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let bad = || format!("`{target}` is not a `host:port` target");
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => Err(bad()),
    }
}
