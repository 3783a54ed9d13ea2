//! Test a built Tollgate plugin from Rust, without compiling the gateway.
//!
//! The kit writes a scenario (the plugin's config, seeded state, a fixed clock, and steps: a
//! request and what to expect of it) and runs it with `tollgate plugin test --scenario`, which
//! loads the component with the gateway's own runtime and runs every step against one instance.
//! It depends only on `serde_json`, so it compiles in seconds; the `tollgate` binary is found
//! through `TOLLGATE_BIN` or on `PATH`. It refuses a component older than its crate's sources,
//! so a test never passes against a stale build.
//!
//! ```no_run
//! use serde_json::json;
//! use tollgate_testkit::{Component, Scenario, Step};
//!
//! // target/wasm32-wasip2/release/my_plugin.wasm of the crate under test (refused when older
//! // than src/ or Cargo.toml: run `cargo build --release --target wasm32-wasip2` first).
//! let plugin = Component::of_this_crate("my_plugin").unwrap();
//! let report = Scenario::new()
//!     .config(json!({ "header": "x-api-key" }))
//!     .now_ms(1_795_700_700_000)
//!     .counter("alice:day", 2)
//!     .step(Step::new("with the key").request(json!({ "headers": { "x-api-key": "k" } }))
//!         .expect(json!({ "action": "continue" })))
//!     .step(Step::new("without").request(json!({}))
//!         .expect(json!({ "status": 401, "body_contains": "missing header" })))
//!     .run(&plugin)
//!     .unwrap();
//! report.assert_passed();
//! ```
//!
//! The scenario's fields are those of the scenario file (`docs/plugin-guide.md`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

/// Why a scenario could not be run.
#[derive(Debug)]
pub enum Error {
    /// The component file is missing.
    NotBuilt(PathBuf),
    /// The component is older than a source file of its crate.
    Stale {
        /// The component.
        module: PathBuf,
        /// A source file changed after it was built.
        source: PathBuf,
    },
    /// The `tollgate` binary could not be run.
    Binary(PathBuf, std::io::Error),
    /// The scenario is invalid (exit code 2), with the binary's message.
    BadScenario(String),
    /// The plugin did not load or refused its config, with the binary's message.
    Load(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotBuilt(m) => write!(
                f,
                "{} does not exist: build the plugin first (cargo build --release --target wasm32-wasip2)",
                m.display()
            ),
            Error::Stale { module, source } => write!(
                f,
                "{} is older than {}: rebuild it (cargo build --release --target wasm32-wasip2) \
                 before testing",
                module.display(),
                source.display()
            ),
            Error::Binary(bin, e) => write!(
                f,
                "cannot run `{}` ({e}): set TOLLGATE_BIN to the tollgate binary or put it on PATH",
                bin.display()
            ),
            Error::BadScenario(m) => write!(f, "bad scenario: {m}"),
            Error::Load(m) => write!(f, "the plugin did not load: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// A built component and the crate it is built from.
#[derive(Debug, Clone)]
pub struct Component {
    path: PathBuf,
    crate_dir: Option<PathBuf>,
}

impl Component {
    /// `target/wasm32-wasip2/release/NAME.wasm` of the crate whose tests are running (cargo sets
    /// `CARGO_MANIFEST_DIR`), refused when missing or older than the crate's sources.
    pub fn of_this_crate(name: &str) -> Result<Self, Error> {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::in_crate(&dir, name)
    }

    /// `target/wasm32-wasip2/release/NAME.wasm` of the crate at `crate_dir`, refused when missing
    /// or older than the crate's `Cargo.toml` or anything under its `src/`.
    pub fn in_crate(crate_dir: &Path, name: &str) -> Result<Self, Error> {
        let path = crate_dir
            .join("target/wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let component = Self {
            path,
            crate_dir: Some(crate_dir.to_owned()),
        };
        component.check_fresh()?;
        Ok(component)
    }

    /// A component file built elsewhere (no freshness check).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            crate_dir: None,
        }
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuse a missing component, or one older than a source file of its crate.
    pub fn check_fresh(&self) -> Result<(), Error> {
        let built = modified(&self.path).ok_or_else(|| Error::NotBuilt(self.path.clone()))?;
        let Some(dir) = &self.crate_dir else {
            return Ok(());
        };
        let mut sources = vec![dir.join("Cargo.toml")];
        collect_files(&dir.join("src"), &mut sources);
        for source in sources {
            if modified(&source).is_some_and(|m| m > built) {
                return Err(Error::Stale {
                    module: self.path.clone(),
                    source,
                });
            }
        }
        Ok(())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// One request and what to expect of it.
#[derive(Debug, Clone)]
pub struct Step(Map<String, Value>);

impl Step {
    /// A step named for the report.
    pub fn new(name: &str) -> Self {
        let mut map = Map::new();
        map.insert("name".into(), json!(name));
        Self(map)
    }

    /// The request: `method`, `path`, `query`, `headers`, `body`, `client_ip`, `route`,
    /// `context`, and `response` (the upstream's answer for the response phase).
    pub fn request(mut self, request: Value) -> Self {
        self.0.insert("request".into(), request);
        self
    }

    /// Move the fixed clock forward before this step.
    pub fn advance_ms(mut self, ms: u64) -> Self {
        self.0.insert("advance_ms".into(), json!(ms));
        self
    }

    /// What should happen: `action`, `status`, `headers`, `absent_headers`, `body`,
    /// `body_contains`, `upstream_headers`, `context`, `failure`.
    pub fn expect(mut self, expect: Value) -> Self {
        self.0.insert("expect".into(), expect);
        self
    }
}

/// A scenario: config, seeded state, clock and steps, run against one plugin instance.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    top: Map<String, Value>,
    counters: Map<String, Value>,
    values: Map<String, Value>,
    steps: Vec<Value>,
}

impl Scenario {
    /// An empty scenario (config `{}`, name `plugin`, clock at 2026-01-01T00:00:00Z).
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin's name: its state keys are `NAME:<key>`.
    pub fn name(mut self, name: &str) -> Self {
        self.top.insert("name".into(), json!(name));
        self
    }

    /// The fixed clock at the first step, Unix milliseconds.
    pub fn now_ms(mut self, ms: u64) -> Self {
        self.top.insert("now_ms".into(), json!(ms));
        self
    }

    /// The plugin's config (its `[plugins.NAME.config]` table as JSON).
    pub fn config(mut self, config: Value) -> Self {
        self.top.insert("config".into(), config);
        self
    }

    /// Seed a counter (key without the `NAME:` prefix).
    pub fn counter(mut self, key: &str, value: i64) -> Self {
        self.counters.insert(key.into(), json!(value));
        self
    }

    /// Seed a value (key without the `NAME:` prefix).
    pub fn value(mut self, key: &str, value: &str) -> Self {
        self.values.insert(key.into(), json!(value));
        self
    }

    /// Add a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(Value::Object(step.0));
        self
    }

    /// The scenario file's JSON.
    pub fn to_json(&self) -> Value {
        let mut top = self.top.clone();
        top.insert(
            "state".into(),
            json!({ "counters": self.counters, "values": self.values }),
        );
        top.insert("steps".into(), Value::Array(self.steps.clone()));
        Value::Object(top)
    }

    /// Run it with the `tollgate` binary from `TOLLGATE_BIN` or `PATH`.
    pub fn run(&self, component: &Component) -> Result<Report, Error> {
        let binary = std::env::var_os("TOLLGATE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("tollgate"));
        self.run_with(&binary, component)
    }

    /// Run it with the given `tollgate` binary.
    pub fn run_with(&self, binary: &Path, component: &Component) -> Result<Report, Error> {
        component.check_fresh()?;
        let file = std::env::temp_dir().join(format!(
            "tollgate-scenario-{}-{}.json",
            std::process::id(),
            SCENARIOS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&file, self.to_json().to_string())
            .map_err(|e| Error::BadScenario(format!("cannot write {}: {e}", file.display())))?;
        let output = Command::new(binary)
            .args(["plugin", "test"])
            .arg(component.path())
            .arg("--scenario")
            .arg(&file)
            .output();
        let _ = std::fs::remove_file(&file);
        let output = output.map_err(|e| Error::Binary(binary.to_owned(), e))?;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if output.status.code() == Some(2) {
            return Err(Error::BadScenario(stderr));
        }
        match serde_json::from_slice::<Value>(&output.stdout) {
            Ok(json) if json.get("steps").is_some() => Ok(Report { json }),
            _ => Err(Error::Load(stderr)),
        }
    }
}

static SCENARIOS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What a scenario run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The whole report: `passed`, `failed`, `steps` (each `name`, `passed`, `mismatches`,
    /// `outcome`), `logs`.
    pub json: Value,
}

impl Report {
    /// Steps that did not hold.
    pub fn failed(&self) -> usize {
        self.json["failed"].as_u64().unwrap_or(0) as usize
    }

    /// The outcome of step `i` (what the plugin did: `action`, `response`, `request`,
    /// `context`, `phases`, `failure`).
    pub fn outcome(&self, i: usize) -> &Value {
        &self.json["steps"][i]["outcome"]
    }

    /// Panic with every mismatch when a step did not hold.
    #[track_caller]
    pub fn assert_passed(&self) {
        let mut lines = Vec::new();
        for step in self.json["steps"].as_array().into_iter().flatten() {
            if step["passed"] != true {
                lines.push(format!("step `{}`:", step["name"].as_str().unwrap_or("?")));
                for m in step["mismatches"].as_array().into_iter().flatten() {
                    lines.push(format!("  - {}", m.as_str().unwrap_or("?")));
                }
            }
        }
        assert!(lines.is_empty(), "scenario failed:\n{}", lines.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_older_than_its_sources_is_refused() {
        let dir = std::env::temp_dir().join(format!("tollgate-testkit-{}", std::process::id()));
        let release = dir.join("target/wasm32-wasip2/release");
        std::fs::create_dir_all(&release).expect("mkdir");
        std::fs::create_dir_all(dir.join("src")).expect("mkdir");
        std::fs::write(dir.join("Cargo.toml"), "").expect("write");
        std::fs::write(dir.join("src/lib.rs"), "").expect("write");
        assert!(matches!(
            Component::in_crate(&dir, "my-plugin"),
            Err(Error::NotBuilt(_))
        ));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(release.join("my_plugin.wasm"), "").expect("write");
        assert!(Component::in_crate(&dir, "my-plugin").is_ok());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("src/lib.rs"), "// edited").expect("write");
        let err = Component::in_crate(&dir, "my-plugin").expect_err("stale");
        assert!(err.to_string().contains("is older than"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
