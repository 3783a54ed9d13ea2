//! Tollgate: a programmable API gateway whose policies are sandboxed WebAssembly plugins.
//!
//! The request path: [`proxy`] (server, routing, limits, upstream client) runs each request
//! through a [`chain::Chain`], implemented by [`runtime`] (wasmtime, warm instance pools).
//! [`gateway`] assembles both from a [`config`] and swaps them on reload.

pub mod access_log;
pub mod admin;
pub mod chain;
pub mod config;
pub mod control;
pub mod ctl;
pub mod follow;
pub mod gateway;
pub mod header_map;
pub mod latency;
pub mod path;
pub mod plugin_test;
pub mod proxy;
pub mod runtime;
pub mod signing;
pub mod telemetry;
pub mod tls;
pub mod usage;
mod watch;
