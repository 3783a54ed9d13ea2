//! The canaries' state across config snapshots (docs/rollout.md): one [`CanaryState`] per entry
//! and canary version (its fingerprint: module, config, limits), so a rolled-back canary stays
//! out while the config keeps naming it, and a new canary starts active. Also the operator's
//! `promote` and `rollback`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::runtime::{CanaryState, CanaryStatus, PluginFingerprint};

/// Canary states by (entry name, canary fingerprint).
#[derive(Default)]
pub(super) struct CanaryRegistry {
    states: Mutex<HashMap<(String, PluginFingerprint), Arc<CanaryState>>>,
}

impl CanaryRegistry {
    /// The state of entry `name`'s canary `fingerprint`: the one it had, or a new active one.
    pub(super) fn state(&self, name: &str, fingerprint: PluginFingerprint) -> Arc<CanaryState> {
        let mut states = match self.states.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        states
            .entry((name.to_owned(), fingerprint))
            .or_default()
            .clone()
    }

    /// Keep only the states the active config uses (called after a swap).
    pub(super) fn retain(&self, active: &HashMap<String, Arc<CanaryState>>) {
        let mut states = match self.states.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        states.retain(|(name, _), state| active.get(name).is_some_and(|a| Arc::ptr_eq(a, state)));
    }
}

/// What an operator asks of a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryAction {
    /// Serve all of the entry's traffic with the canary.
    Promote,
    /// Take the canary out of service.
    Rollback,
}

/// Why a canary action was refused.
#[derive(Debug, thiserror::Error)]
pub enum CanaryActionError {
    /// No such plugin entry, or it has no canary.
    #[error("plugin `{0}` has no canary in the active config")]
    NoCanary(String),
    /// The canary is not in a state the action applies to.
    #[error("the canary of `{name}` is {status}; {hint}")]
    Conflict {
        /// The entry.
        name: String,
        /// Its state.
        status: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
}

/// Apply `action` to `state` (the canary of entry `name`); the new status.
pub(super) fn apply(
    name: &str,
    state: &CanaryState,
    action: CanaryAction,
) -> Result<CanaryStatus, CanaryActionError> {
    let status = state.status();
    let (from, to, why) = match (action, status) {
        (CanaryAction::Promote, CanaryStatus::Active) => (
            CanaryStatus::Active,
            CanaryStatus::Promoted,
            "promoted by an operator",
        ),
        (CanaryAction::Rollback, CanaryStatus::Active | CanaryStatus::Promoted) => (
            status,
            CanaryStatus::RolledBack,
            "rolled back by an operator",
        ),
        (_, status) => {
            return Err(CanaryActionError::Conflict {
                name: name.to_owned(),
                status: status.as_str(),
                hint: match status {
                    CanaryStatus::RolledBack => {
                        "name a new canary module or config in the config to try again"
                    }
                    _ => "make the canary the entry's module in the config to finish",
                },
            });
        }
    };
    if state.transition(from, to, why.to_owned()) {
        if to == CanaryStatus::RolledBack {
            metrics::counter!("tollgate_canary_rollbacks_total", "plugin" => name.to_owned())
                .increment(1);
        }
        tracing::warn!(plugin = name, "canary {}: {why}", to.as_str());
        Ok(to)
    } else {
        // Changed meanwhile (the rollback rule fired): report what it is now.
        Err(CanaryActionError::Conflict {
            name: name.to_owned(),
            status: state.status().as_str(),
            hint: "its state changed meanwhile",
        })
    }
}
