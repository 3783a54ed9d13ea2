//! The Wasm side: one wasmtime engine, compiled-plugin cache, warm instance pools, and the
//! [`crate::chain::Chain`] implementation that runs plugins.
