//! The control plane with real processes: `tollgate control` on SQLite and on PostgreSQL,
//! gateways started with `tollgate run --control`, configs pushed with `tollgate ctl`. One
//! scenario per module, named for what an operator does; `support` starts the processes.

#![allow(clippy::unwrap_used)]

mod support;

mod api_references_are_uploaded_and_rendered;
mod canary_modules_travel_with_the_revision;
mod developers_choose_their_plan;
mod fleet_follows_changes_and_outages;
mod gateway_reports_a_revision_it_cannot_apply;
mod invalid_config_is_refused_with_toml_paths;
mod keys_rotate_expire_and_delete;
mod openapi_document_matches_the_server;
mod portal_in_a_browser;
mod portal_refuses_forgery_fixation_and_xss;
mod roles_limit_what_tokens_can_do;
mod routes_page_draws_chains_with_live_figures;
mod signed_canaries_through_the_control_plane;
mod spike_alerts_reach_the_dashboard_and_webhooks;
mod usage_browser;
mod usage_is_charted_per_route_and_consumer;
mod usage_pages_load_fast_with_a_year_of_data;
