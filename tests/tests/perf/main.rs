//! Scenarios of the proxy core: how requests are forwarded (retries that replay bodies,
//! forwarding headers, h2 cookies) and how the workers serve. One binary for the area, like
//! `tests/e2e`; the TLS helpers are shared with it by path.

#![allow(clippy::unwrap_used)]

#[path = "../e2e/tls_support/mod.rs"]
mod tls_support;

mod forwarded_proto_and_h2_cookies;
mod retry_replays_the_request_body;
