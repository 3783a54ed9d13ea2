//! Tollgate: a programmable API gateway whose policies are sandboxed WebAssembly plugins.

pub mod chain;
pub mod config;
pub mod proxy;
pub mod runtime;
