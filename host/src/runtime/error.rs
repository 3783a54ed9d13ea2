//! Errors of the runtime's load path. Request-time failures are [`crate::chain::PluginFailure`].

use std::path::PathBuf;

/// Why the runtime or a plugin could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine could not be built from the options.
    #[error("wasm engine: {0:#}")]
    Engine(#[source] wasmtime::Error),
    /// The plugin's component file could not be read.
    #[error("plugin `{plugin}`: cannot read {}: {source}", path.display())]
    Read {
        /// Plugin name.
        plugin: String,
        /// The module path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The component did not compile, or does not match the plugin world.
    #[error("plugin `{plugin}`: invalid component: {message}")]
    Invalid {
        /// Plugin name.
        plugin: String,
        /// Detail.
        message: String,
    },
    /// Creating an instance failed (pool exhausted, memory limit below the initial memory, ...).
    #[error("plugin `{plugin}`: cannot instantiate: {message}")]
    Instantiate {
        /// Plugin name.
        plugin: String,
        /// Detail.
        message: String,
    },
    /// The plugin's `init` refused its config; the message is the plugin's own.
    #[error("plugin `{plugin}`: {message}")]
    Init {
        /// Plugin name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin's limits do not fit the runtime's options.
    #[error("plugin `{plugin}`: {message}")]
    Limits {
        /// Plugin name.
        plugin: String,
        /// Detail.
        message: String,
    },
}
