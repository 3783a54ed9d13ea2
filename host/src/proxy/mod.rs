//! The network side: HTTP server, routing, path normalisation, limits and the upstream client.
//!
//! The lead wires it up like this:
//!
//! ```no_run
//! # async fn run(config: tollgate::config::Config) -> anyhow::Result<()> {
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use tollgate::proxy::{Proxy, RoutingTable, serve};
//!
//! let table = RoutingTable::new(&config, HashMap::new())?;
//! let proxy = Arc::new(Proxy::new(table));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, proxy.clone(), async { let _ = tokio::signal::ctrl_c().await; }).await;
//! // On reload: proxy.swap(RoutingTable::new(&new_config, new_chains)?);
//! # Ok(()) }
//! ```
//!
//! The flow of one request is in [`handler`]; every refusal is a [`ProxyError`], turned into a
//! response in one place ([`ProxyError::into_response`]).

pub mod body;
pub mod budget;
pub mod client;
pub(crate) mod connection;
pub mod drain;
pub mod error;
mod exchange_parts;
mod exchange_trace;
pub mod fetch;
mod gateway;
pub mod handler;
pub mod headers;
pub mod host;
mod lazy_body;
mod metrics;
mod plain_http;
mod response;
pub mod routing;
pub mod server;
pub mod tally;
pub mod upstream;
mod upstream_failure;
pub mod workers;

pub use crate::path::{PathError, normalize_path};
pub use error::ProxyError;
pub use fetch::ProxyFetcher;
pub use gateway::Proxy;
pub use routing::{RouteEntry, RoutingTable, TableError};
pub use server::{ServeOptions, serve, serve_with};
