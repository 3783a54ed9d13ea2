//! Safe plugin rollout (docs/rollout.md): signed modules and their provenance, canary versions
//! split by a stable key, and automatic rollback. One binary for the area (see
//! `tests/tests/e2e/main.rs` for why); scenarios print their measured figures.

#![allow(clippy::unwrap_used)]

mod rollout_support;

mod default_config_passes_with_signatures_required;
mod unsigned_changed_and_untrusted_modules_are_refused;
