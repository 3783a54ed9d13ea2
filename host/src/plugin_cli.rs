//! `tollgate plugin test` and `tollgate plugin new` (part of the binary, not the library).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tollgate::plugin_test::{
    FixedClock, LoadOptions, LogCapture, PluginUnderTest, Scenario, TestRequest,
    config_json_from_file,
};
use tollgate::runtime::{PluginClock, SystemClock};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

/// Exit code when the plugin failed (trap, deadline, memory) or refused its config.
const PLUGIN_FAILED: u8 = 1;
/// Exit code for bad input: unreadable or invalid request, config or module path.
const BAD_INPUT: u8 = 2;

/// Options of `tollgate plugin test`.
pub struct TestArgs {
    pub module: PathBuf,
    pub request: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub now_ms: Option<u64>,
    pub memory_limit_mb: usize,
    pub timeout_ms: u64,
    pub cache_dir: Option<PathBuf>,
    pub name: String,
    pub scenario: Option<PathBuf>,
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(BAD_INPUT)
}

/// Load the plugin, run one request through it and print what it decided as JSON.
pub fn test(args: TestArgs) -> ExitCode {
    if !args.module.is_file() {
        return bad_input(format!(
            "{} is not a file (build the plugin first)",
            args.module.display()
        ));
    }
    if args.timeout_ms == 0 || args.memory_limit_mb == 0 {
        return bad_input("--timeout-ms and --memory-limit-mb must be greater than zero");
    }
    if let Some(path) = &args.scenario {
        return scenario(&args, path);
    }
    let request: TestRequest = match &args.request {
        None => TestRequest::default(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => return bad_input(format!("cannot read {}: {e}", path.display())),
            };
            match serde_json::from_str(&text) {
                Ok(r) => r,
                Err(e) => return bad_input(format!("{}: {e}", path.display())),
            }
        }
    };
    let config_json = match &args.config {
        None => "{}".to_owned(),
        Some(path) => match config_json_from_file(path) {
            Ok(json) => json,
            Err(e) => return bad_input(e),
        },
    };
    let clock: Arc<dyn PluginClock> = match args.now_ms {
        Some(ms) => Arc::new(FixedClock::new(ms)),
        None => Arc::new(SystemClock),
    };
    let capture = capture_logs();
    let runtime = match current_thread_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let opts = LoadOptions {
        memory_limit_mb: args.memory_limit_mb,
        timeout: Duration::from_millis(args.timeout_ms),
        cache_dir: args.cache_dir,
        clock,
        name: args.name,
        // A Python traceback or a console.log is what an author needs to see.
        guest_output_to_stderr: true,
        ..LoadOptions::default()
    };
    runtime.block_on(async move {
        let plugin = match PluginUnderTest::load(&args.module, &config_json, opts).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                print_logs(&capture);
                return ExitCode::from(PLUGIN_FAILED);
            }
        };
        let outcome = match plugin.run(&request).await {
            Ok(o) => o,
            Err(e) => return bad_input(e),
        };
        let failed = outcome.failure.is_some();
        let mut json = match serde_json::to_value(&outcome) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let caps = plugin.capabilities();
        json["capabilities"] = serde_json::json!({
            "request": caps.request, "response": caps.response, "log": caps.log,
            "request_body": caps.request_body, "response_body": caps.response_body,
        });
        json["contract"] =
            serde_json::json!(format!("tollgate:plugin@{}", plugin.contract_version()));
        json["logs"] = serde_json::to_value(capture.take()).unwrap_or_default();
        match serde_json::to_string_pretty(&json) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: {e}"),
        }
        if failed {
            ExitCode::from(PLUGIN_FAILED)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Plugin log lines are part of the answer; everything else the host logs goes to stderr only
/// with RUST_LOG set.
fn capture_logs() -> LogCapture {
    let capture = LogCapture::new();
    let stderr = std::env::var_os("RUST_LOG").map(|_| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::from_default_env())
    });
    let subscriber = tracing_subscriber::registry()
        .with(capture.clone())
        .with(stderr);
    let _ = tracing::subscriber::set_global_default(subscriber);
    capture
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// `tollgate plugin test MODULE --scenario FILE`: every step against one instance; a JSON
/// report on stdout.
fn scenario(args: &TestArgs, path: &Path) -> ExitCode {
    let scenario = match Scenario::from_file(path) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let capture = capture_logs();
    let runtime = match current_thread_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let opts = LoadOptions {
        memory_limit_mb: args.memory_limit_mb,
        timeout: Duration::from_millis(args.timeout_ms),
        cache_dir: args.cache_dir.clone(),
        guest_output_to_stderr: true,
        ..LoadOptions::default()
    };
    let report = match runtime.block_on(scenario.run(&args.module, opts)) {
        Ok(report) => report,
        Err(tollgate::plugin_test::TestError::BadInput(e)) => return bad_input(e),
        Err(e) => {
            eprintln!("error: {e}");
            print_logs(&capture);
            return ExitCode::from(PLUGIN_FAILED);
        }
    };
    let mut json = serde_json::to_value(&report).unwrap_or_default();
    json["logs"] = serde_json::to_value(capture.take()).unwrap_or_default();
    match serde_json::to_string_pretty(&json) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: {e}"),
    }
    for step in report.steps.iter().filter(|s| !s.passed) {
        eprintln!("step `{}` failed:", step.name);
        for m in &step.mismatches {
            eprintln!("  - {m}");
        }
    }
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(PLUGIN_FAILED)
    }
}

fn print_logs(capture: &LogCapture) {
    for line in capture.take() {
        eprintln!("plugin log [{}]: {}", line.level, line.message);
    }
}

/// The SDK this binary was built from, when its source is still there.
fn default_sdk_path() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().ok())
        .flatten()
}

/// `tollgate plugin new NAME`: a Rust plugin crate that builds and passes its own test.
pub fn new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> ExitCode {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return bad_input(format!(
            "`{name}` is not a plugin name: use lower-case letters, digits, `-` and `_`, starting with a letter"
        ));
    }
    let Some(sdk) = sdk.or_else(default_sdk_path) else {
        return bad_input(
            "cannot find the tollgate SDK: pass --sdk PATH (the `sdk` folder of the tollgate repository)",
        );
    };
    let sdk = match sdk.join("Cargo.toml").is_file() {
        true => sdk.canonicalize().unwrap_or(sdk),
        false => return bad_input(format!("{} has no Cargo.toml: not the SDK", sdk.display())),
    };
    let target = dir.unwrap_or_else(|| PathBuf::from(name));
    if target.exists() {
        return bad_input(format!("{} already exists", target.display()));
    }
    let files = template::files(name, &sdk);
    for (rel, text) in &files {
        let path = target.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let wasm = name.replace('-', "_");
    println!(
        "created {dir}: a Rust plugin `{name}` (SDK at {sdk})\n\n  cd {dir}\n  cargo build --release --target wasm32-wasip2\n  cargo test\n  tollgate plugin test target/wasm32-wasip2/release/{wasm}.wasm --request request.json --config config.toml",
        dir = target.display(),
        sdk = sdk.display(),
    );
    ExitCode::SUCCESS
}

/// The files of a new plugin crate.
mod template {
    use std::path::Path;

    pub(super) fn files(name: &str, sdk: &Path) -> Vec<(&'static str, String)> {
        let sdk = sdk.display().to_string().replace('\\', "/");
        vec![
            (
                "Cargo.toml",
                CARGO_TOML.replace("{name}", name).replace("{sdk}", &sdk),
            ),
            ("src/lib.rs", LIB_RS.replace("{name}", name)),
            ("config.toml", CONFIG_TOML.to_owned()),
            ("request.json", REQUEST_JSON.to_owned()),
            (".gitignore", "/target\n".to_owned()),
            (
                "README.md",
                README
                    .replace("{name}", name)
                    .replace("{wasm}", &name.replace('-', "_")),
            ),
        ]
    }

    const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A standalone crate, not a member of an enclosing workspace.
[workspace]

[lib]
crate-type = ["cdylib"]          # a component, not a Rust library

[dependencies]
tollgate-sdk = { path = "{sdk}" }
serde = { version = "1", features = ["derive"] }
serde_json = "1"

# Self-contained components. A panic aborts, which the gateway sees as a trap. opt-level 3, not
# "s": the gateway calls the plugin on every request (the built-in `redact` costs about 20 %
# less CPU per request at 3; docs/performance.md).
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
"#;

    const LIB_RS: &str = r##"//! Tollgate plugin `{name}`: refuses requests without a required header and tells the upstream
//! who called. Edit freely: `cargo build --release --target wasm32-wasip2` builds the component.

use serde::Deserialize;
use tollgate_sdk::{Action, Capabilities, Plugin, Request, context, log};

/// The `[plugins.NAME.config]` table, passed to `init` as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Requests without this header are refused.
    pub header: String,
    /// The status of the refusal.
    #[serde(default = "default_status")]
    pub status: u16,
}

fn default_status() -> u16 {
    401
}

/// The plugin: one value per instance, built by `init`.
#[derive(Debug)]
pub struct RequireHeader {
    header: String,
    status: u16,
}

impl Plugin for RequireHeader {
    type Config = Config;

    // Validate everything here: an error fails the config load, never a request.
    fn init(config: Config) -> Result<Self, String> {
        if !(400..=599).contains(&config.status) {
            return Err(format!("status {} is not an error status", config.status));
        }
        if config.header.is_empty() {
            return Err("`header` must not be empty".into());
        }
        Ok(Self { header: config.header.to_ascii_lowercase(), status: config.status })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request()
    }

    fn on_request(&self, req: &Request) -> Action {
        match req.header(&self.header) {
            Some(value) => {
                context::set("caller", &value);
                let _ = req.set_header("x-caller", &value);
                Action::Continue
            }
            None => {
                log::info("refused: header missing");
                Action::json(self.status, &serde_json::json!({ "error": "missing_header", "header": self.header }))
            }
        }
    }
}

tollgate_sdk::export_plugin!(RequireHeader);

// Native unit tests (`cargo test`): config parsing and validation. The request phase needs the
// gateway's imports; test it on the built component with
// `tollgate plugin test target/wasm32-wasip2/release/<crate>.wasm --request request.json --config config.toml`.
#[cfg(test)]
mod tests {
    use super::*;

    fn init(json: &str) -> Result<RequireHeader, String> {
        RequireHeader::init(tollgate_sdk::parse_config::<Config>(json)?)
    }

    #[test]
    fn a_good_config_loads() {
        let p = init(r#"{"header": "X-Api-Key"}"#).expect("valid config");
        assert_eq!(p.header, "x-api-key");
        assert_eq!(p.status, 401);
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        assert!(init(r#"{"header": "x", "status": 200}"#).unwrap_err().contains("not an error status"));
        assert!(init(r#"{"header": "x", "extra": 1}"#).unwrap_err().contains("unknown field"));
        assert!(init(r#"{}"#).unwrap_err().contains("header"));
    }
}
"##;

    const CONFIG_TOML: &str = r#"# The plugin's config: what goes under [plugins.NAME.config] in gateway.toml.
header = "x-api-key"
status = 401
"#;

    const REQUEST_JSON: &str = r#"{
  "method": "GET",
  "path": "/api/orders",
  "headers": { "x-api-key": "alice" }
}
"#;

    const README: &str = r#"# {name}

A Tollgate plugin. See the plugin authoring guide (`docs/plugin-guide.md` in the tollgate
repository).

```sh
cargo build --release --target wasm32-wasip2      # -> target/wasm32-wasip2/release/{wasm}.wasm
cargo test                                        # native unit tests
tollgate plugin test target/wasm32-wasip2/release/{wasm}.wasm --request request.json --config config.toml
```

In `gateway.toml`:

```toml
[plugins.{name}]
module = "path/to/{wasm}.wasm"
[plugins.{name}.config]
header = "x-api-key"
```
"#;
}
