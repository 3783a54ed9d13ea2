//! Configuration: raw TOML types, validation into [`model`] types, and error reporting.

pub mod model;

pub use model::*;
