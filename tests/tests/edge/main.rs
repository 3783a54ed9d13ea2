//! The edge hardening scenarios (issue 12: client → gateway and operations) in one test binary:
//! each separate binary would link wasmtime again. One module per scenario, named for what a
//! client or operator does; `edge_support` holds the raw-socket helpers they share.

#![allow(clippy::unwrap_used)]

mod edge_support;

mod admin_refuses_rebinding_and_cross_site_posts;
mod buffered_bodies_are_capped_across_requests;
mod credentials_are_masked_in_config_errors_and_logs;
mod host_must_name_one_valid_host;
mod malformed_chunked_bodies_get_400;
mod rate_limit_counts_ipv6_clients_per_prefix;
mod routing_reads_the_path_like_rbac_and_tomcat;
mod upstream_connections_are_reused_and_replaced;
