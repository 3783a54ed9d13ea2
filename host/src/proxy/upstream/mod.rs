//! The upstream side of the proxy: where a routed request goes and how it gets there.
//!
//! - [`pool`]: an upstream's targets and settings, as one routing table serves them;
//! - [`balance`]: round-robin or least-connections over the available targets;
//! - [`health`]: target health (active checks, passive ejection), carried across tables;
//! - [`retry`]: sending with retries, within a budget, replaying streamed bodies ([`replay`]);
//! - [`client`]: pooled keep-alive HTTP clients and one bounded attempt ([`client::send`]);
//! - [`h1_pool`]: the proxy's own HTTP/1.1 connections to plain-HTTP targets, per worker;
//! - [`forward`]: the request a target receives (forwarding headers, framing);
//! - [`connector`]: TCP and TLS connections to targets.
//!
//! This layer never imports routing or the request flow: the routing table hands it pools, the
//! flow hands it the request state after the chain (`chain::RequestState`, the seam's type).

pub mod balance;
pub mod client;
pub mod connector;
pub mod forward;
pub mod h1_pool;
pub mod health;
pub mod pool;
pub mod replay;
pub mod retry;

pub use client::{Clients, HttpClient, ProxyClient, send};
pub use pool::UpstreamPool;
