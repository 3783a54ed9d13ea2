//! Platform scenarios over the real `tollgate` binary: hot swap by file watching (edits, editors'
//! ways of saving, an idle gateway staying idle) and the plugin authoring tools. One test binary
//! for the area, like `host/tests/host/main.rs`; `support` holds the shared helpers.

#![allow(clippy::unwrap_used)]

#[path = "../host/binary_support/mod.rs"]
mod binary_support;
mod support;

mod plugin_test_kit_without_the_gateway;
mod plugin_test_scenario;
mod readme_configs_pass_check;
mod watch_config_edits_with_a_bare_config_name;
mod watch_idle_gateways_make_no_reloads;
