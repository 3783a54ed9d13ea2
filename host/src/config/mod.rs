//! Configuration: raw TOML types ([`raw`]), validation ([`validate`]) into [`model`] types, and
//! errors that name the TOML path of every problem.

mod error;
pub mod model;
mod plugin_errors;
mod plugin_limits;
mod raw;
mod validate;

pub(crate) use error::render as render_issues;
pub use error::{ConfigError, ConfigIssue};
pub use model::*;
pub use plugin_errors::plugin_config_issues;
pub use plugin_limits::PluginLimits;
pub use validate::{DEFAULT_PLUGIN_DIR, load, parse};
