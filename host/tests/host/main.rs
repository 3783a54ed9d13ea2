//! Every scenario of this area in one test binary: each separate binary would link wasmtime
//! again, and that cost CI minutes for nothing. One module per scenario, named for what a
//! user does; the `*_support` modules are shared helpers.

#![allow(clippy::unwrap_used)]

mod binary_support;
mod proxy_support;
mod runtime_support;

mod config_golden;
mod graceful_shutdown_drains_in_flight;
mod plugin_new_command;
mod plugin_test_command;
mod plugin_test_kit;
mod prometheus_metrics;
mod proxy_forwarding_headers;
mod proxy_hot_swap_in_flight;
mod proxy_http2_prior_knowledge;
mod proxy_plugin_chain_flow;
mod proxy_rejects_bad_paths_and_framing;
mod proxy_request_limits;
mod proxy_round_robin;
mod proxy_route_by_path_and_host;
mod proxy_upstream_down_or_slow;
mod rate_limit_two_processes_redis;
mod runtime_cache;
mod runtime_sandbox;
mod sighup_reload;
mod state_redis_backend;
