//! Scenarios: a sequence of requests against one plugin instance, with seeded state and a fixed
//! clock, each step checked against what the author expects (`tollgate plugin test --scenario`).
//! Stateful plugins (replay a stored answer, 409 while in flight, 422 on a changed body) are
//! tested this way without compiling a gateway or a Rust test.
//!
//! ```toml
//! name = "idem"                     # the plugin's name: state keys are `idem:<key>`
//! now_ms = 1795700700000            # the clock, fixed; steps move it with `advance_ms`
//! config = { ttl_s = 60 }           # the plugin's [plugins.NAME.config] table
//!
//! [state]                           # seeded before the first step (keys without `idem:`)
//! counters = { "alice:day" = 3 }
//! values = { "lock:k0" = "taken" }
//!
//! [[steps]]
//! name = "first payment goes through"
//! request = { method = "POST", path = "/pay", headers = { "idempotency-key" = "k1" }, body = "{}" }
//! expect = { action = "continue", status = 201 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FixedClock, LoadOptions, Outcome, PluginUnderTest, TestError, TestRequest};
use crate::runtime::{MemoryState, StateBackend};

/// 2026-01-01T00:00:00Z: the scenario clock when `now_ms` is not given.
pub const DEFAULT_NOW_MS: u64 = 1_767_225_600_000;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The plugin's name (default `plugin`): namespaces its state keys.
    #[serde(default)]
    pub name: Option<String>,
    /// The fixed clock at the first step, Unix milliseconds.
    #[serde(default)]
    pub now_ms: Option<u64>,
    /// The plugin's config (its `[plugins.NAME.config]` table).
    #[serde(default)]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// State seeded before the first step.
    #[serde(default)]
    pub state: SeedState,
    /// The requests, in order.
    pub steps: Vec<Step>,
}

/// Counters and values to seed, keys without the plugin's `NAME:` prefix.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedState {
    /// Counters and their values.
    #[serde(default)]
    pub counters: BTreeMap<String, i64>,
    /// Values.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// One request and what should come of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A name for the report (default `step N`).
    #[serde(default)]
    pub name: Option<String>,
    /// Move the clock forward this much before the request.
    #[serde(default)]
    pub advance_ms: u64,
    /// The request (with `response`: the upstream's answer for the response phase).
    #[serde(default)]
    pub request: TestRequest,
    /// What should happen; anything left out is not checked.
    #[serde(default)]
    pub expect: Expect,
}

/// Expectations for one step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `continue`, `respond` or `failed`.
    #[serde(default)]
    pub action: Option<String>,
    /// The status the client gets.
    #[serde(default)]
    pub status: Option<u16>,
    /// Response headers (first value, name case-insensitive).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response headers that must be absent.
    #[serde(default)]
    pub absent_headers: Vec<String>,
    /// The exact response body.
    #[serde(default)]
    pub body: Option<String>,
    /// Text the response body contains.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Headers of the request as the upstream gets it.
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
    /// Context values set by the plugin.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// The failure kind (`trap`, `timeout`, ...), with `action = "failed"`.
    #[serde(default)]
    pub failure: Option<String>,
}

/// The result of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// True when every expectation held.
    pub passed: bool,
    /// What did not hold, one line each.
    pub mismatches: Vec<String>,
    /// What the plugin did.
    pub outcome: Outcome,
}

/// The result of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Steps that passed.
    pub passed: usize,
    /// Steps that failed.
    pub failed: usize,
    /// Each step.
    pub steps: Vec<StepReport>,
}

impl Scenario {
    /// Read a scenario file: `.json` as JSON, anything else as TOML.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Load `module` with the scenario's config, seed its state and run every step against the
    /// one instance (`opts` gives the limits; its clock, state and name are the scenario's).
    pub async fn run(
        &self,
        module: &Path,
        mut opts: LoadOptions,
    ) -> Result<ScenarioReport, TestError> {
        let clock = FixedClock::new(self.now_ms.unwrap_or(DEFAULT_NOW_MS));
        let state: Arc<dyn StateBackend> = Arc::new(MemoryState::new());
        let name = self.name.clone().unwrap_or_else(|| "plugin".to_owned());
        for (key, value) in &self.state.counters {
            let key = format!("{name}:{key}");
            state.incr(&key, *value, None).await.map_err(seed_error)?;
        }
        for (key, value) in &self.state.values {
            let key = format!("{name}:{key}");
            state.set(&key, value, None).await.map_err(seed_error)?;
        }
        opts.clock = Arc::new(clock.clone());
        opts.state = state;
        opts.name = name;
        let config = serde_json::Value::Object(self.config.clone().unwrap_or_default());
        let plugin = PluginUnderTest::load(module, &config.to_string(), opts).await?;
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            clock.advance(Duration::from_millis(step.advance_ms));
            let outcome = plugin.run(&step.request).await.map_err(|e| match e {
                TestError::BadInput(m) => TestError::BadInput(format!("steps[{i}]: {m}")),
                other => other,
            })?;
            let mismatches = step.expect.check(&outcome);
            steps.push(StepReport {
                name: step
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("step {}", i + 1)),
                passed: mismatches.is_empty(),
                mismatches,
                outcome,
            });
        }
        let passed = steps.iter().filter(|s| s.passed).count();
        Ok(ScenarioReport {
            passed,
            failed: steps.len() - passed,
            steps,
        })
    }
}

fn seed_error(e: impl std::fmt::Display) -> TestError {
    TestError::BadInput(format!("state: cannot seed: {e}"))
}

impl Expect {
    /// What of this expectation the outcome does not meet.
    pub fn check(&self, out: &Outcome) -> Vec<String> {
        let mut miss = Vec::new();
        let mut want = |what: &str, expected: String, got: String| {
            miss.push(format!("{what}: expected {expected}, got {got}"));
        };
        let text = |v: Option<&str>| v.map_or_else(|| "nothing".to_owned(), |v| format!("{v:?}"));
        if let Some(action) = &self.action
            && action != out.action
        {
            want("action", format!("{action:?}"), format!("{:?}", out.action));
        }
        let resp = out.response.as_ref();
        if let Some(status) = self.status
            && resp.map(|r| r.status) != Some(status)
        {
            let got = resp.map_or_else(|| "nothing".to_owned(), |r| r.status.to_string());
            want("status", status.to_string(), got);
        }
        for (name, value) in &self.headers {
            let got = resp.and_then(|r| r.header(name));
            if got != Some(value.as_str()) {
                want(&format!("header {name}"), format!("{value:?}"), text(got));
            }
        }
        for name in &self.absent_headers {
            if let Some(got) = resp.and_then(|r| r.header(name)) {
                want(
                    &format!("header {name}"),
                    "none".to_owned(),
                    format!("{got:?}"),
                );
            }
        }
        let body = resp.map(|r| r.body.as_str());
        if let Some(expected) = &self.body
            && body != Some(expected.as_str())
        {
            want("body", format!("{expected:?}"), text(body));
        }
        if let Some(part) = &self.body_contains
            && !body.is_some_and(|b| b.contains(part.as_str()))
        {
            want("body containing", format!("{part:?}"), text(body));
        }
        for (name, value) in &self.upstream_headers {
            let got = out.request.header(name);
            if got != Some(value.as_str()) {
                want(
                    &format!("upstream header {name}"),
                    format!("{value:?}"),
                    text(got),
                );
            }
        }
        for (key, value) in &self.context {
            let got = out.context.set.get(key).map(String::as_str);
            if got != Some(value.as_str()) {
                want(&format!("context {key}"), format!("{value:?}"), text(got));
            }
        }
        if let Some(kind) = &self.failure {
            let got = out.failure.as_ref().map(|f| f.kind);
            if got != Some(kind.as_str()) {
                want("failure", format!("{kind:?}"), text(got));
            }
        }
        miss
    }
}
