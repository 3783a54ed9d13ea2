//! Safe plugin rollout (docs/rollout.md): signed modules and their provenance, canary versions
//! split by a stable key, and automatic rollback. One binary for the area (see
//! `tests/tests/e2e/main.rs` for why); scenarios print their measured figures.

#![allow(clippy::unwrap_used)]

mod rollout_support;

mod canary_by_consumer_keeps_each_consumer_on_one_version;
mod default_config_passes_with_signatures_required;
mod slow_canary_is_rolled_back_by_the_latency_rule;
mod trapping_canary_is_rolled_back_by_the_error_rule;
mod unsigned_changed_and_untrusted_modules_are_refused;
