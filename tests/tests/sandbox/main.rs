//! Hostile plugins against the sandbox: each scenario has a plugin hand the host more than it
//! allows (headers, statuses, context, logs, metrics, state, fetches, defers, time) and checks,
//! over real sockets, that the client gets a clear answer, a counter moves and the gateway keeps
//! serving. One binary for the area (see `tests/tests/e2e/main.rs` for why).

#![allow(clippy::unwrap_used)]

mod sandbox_support;

mod abandoned_calls_give_their_instances_back;
mod check_warns_about_fail_open_access_control;
mod compiling_stays_out_of_the_gateway;
mod histogram_samples_are_bounded;
mod log_phase_queue_is_bounded;
mod memory_state_is_bounded;
mod plugin_call_wall_clock_is_capped;
mod plugin_cannot_send_informational_status;
mod plugin_defer_loop_is_capped;
mod plugin_headers_are_bounded;
mod plugin_imports_are_bounded;
mod plugin_instances_are_bounded;
mod replacement_init_is_off_the_request_path;
mod spinning_plugin_does_not_stall_other_routes;
