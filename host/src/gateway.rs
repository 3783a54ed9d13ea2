//! Assembles a running gateway from a config: loads plugins through the runtime, builds the
//! routing table for the proxy, and swaps it atomically on reload (file change, SIGHUP or
//! `POST /admin/reload`). A reload that fails changes nothing.
//!
//! Layers, each using only those above it: `error`; `reload` (what a reload reads and
//! reports); `assemble` (runtime, state backend, access log, routing table); `check`
//! (`tollgate check`); `live` (the [`Gateway`] and its reload); `serve` (listeners, workers,
//! shutdown, `tollgate run`).

mod assemble;
mod check;
mod error;
mod live;
mod provenance;
mod reload;
mod rollout;
mod serve;

pub use check::{check, check_warnings};
pub use error::GatewayError;
pub use live::Gateway;
pub use provenance::{Provenance, Revision};
pub use reload::ReloadReport;
pub use rollout::{CanaryAction, CanaryActionError};
pub use serve::{Running, run, serve_until_signal, start, start_at};
