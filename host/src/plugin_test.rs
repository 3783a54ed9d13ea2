//! Run one plugin once, without a gateway: what `tollgate plugin test` and the test kit
//! (this module, used from an author's tests: docs/plugin-guide.md) are built on.
//!
//! The plugin is loaded by the same runtime the gateway uses (same engine, sandbox, imports and
//! limits), so what it decides here is what it decides in a chain. A [`TestRequest`] is fed to its
//! request phase; when it lets the request through and takes part in the response phase, a
//! [`TestResponse`] (200 and empty unless given) stands in for the upstream's answer; the log
//! phase runs last when the plugin asked for it. The [`Outcome`] says what it decided and what
//! it changed. Plugin log lines are captured by [`LogCapture`].

mod clock;
mod config_json;
mod error;
mod input;
mod log_capture;
mod outcome;
mod scenario;
mod under_test;

pub use clock::FixedClock;
pub use config_json::{config_json_from_file, config_json_from_text};
pub use error::TestError;
pub use input::{OneOrMany, TestRequest, TestResponse};
pub use log_capture::{LogCapture, PluginLog};
pub use outcome::{ContextChanges, FailureView, HeaderList, Outcome, RequestView, ResponseView};
pub use scenario::{DEFAULT_NOW_MS, Expect, Scenario, ScenarioReport, SeedState, Step, StepReport};
pub use under_test::{LoadOptions, PluginUnderTest};
