//! Logging through the gateway's structured log, tagged with the plugin's name and the request
//! id. Plugins have no stdout; use these instead.

use crate::__private::tollgate::plugin::log::{Level, write};

/// Log at trace level.
pub fn trace(message: &str) {
    write(Level::Trace, message)
}

/// Log at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message)
}

/// Log at info level.
pub fn info(message: &str) {
    write(Level::Info, message)
}

/// Log at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message)
}

/// Log at error level.
pub fn error(message: &str) {
    write(Level::Error, message)
}
