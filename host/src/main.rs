//! The `tollgate` command: run the gateway, check a config, test or create a plugin.

mod fleet_cli;
mod plugin_cli;
mod sign_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the proxy allocates small, short-lived buffers per request, where it beats the
/// system allocator (docs/performance.md). It is built with `no_thp`: otherwise it asks for
/// transparent huge pages on its 1 GiB arenas, and each 2 MiB page the heap touches stays
/// resident whole (idle RSS with `gateway.toml`: 61-74 MB with them, about 42 MB without, of
/// which the heap is 11 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "A programmable API gateway with WebAssembly plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve traffic with the given config; reloads on file change, SIGHUP or POST /admin/reload.
    Run {
        /// Config file (not read with `--control`).
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
        #[command(flatten)]
        follow: fleet_cli::FollowArgs,
    },
    /// Run the control plane: config revisions, plugin modules, consumers and API keys for a
    /// fleet of gateways (docs/control-plane.md).
    Control(fleet_cli::ControlArgs),
    /// Push and read configs on a control plane.
    Ctl(fleet_cli::CtlArgs),
    /// Validate a config (including each plugin's own config) and print every error.
    Check {
        /// Config file.
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Internal: compile one component read from standard input into OUT, for a gateway that
    /// keeps Cranelift's memory out of its own process (`runtime::compile_process`).
    #[command(name = tollgate::runtime::compile_process::SUBCOMMAND, hide = true)]
    CompilePlugin {
        out: PathBuf,
        #[arg(allow_hyphen_values = true, num_args = 0..)]
        engine: Vec<String>,
    },
    /// Helpers for the `auth` plugin's API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Tools for plugin authors: run a plugin once, or start a new one.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Run one plugin (a .wasm component in any language) once against a request described in
    /// JSON, and print what it decided as JSON: action, status, headers, body, the request as
    /// the upstream would get it, context changes, logs. Exit code 0 when the plugin decided,
    /// 1 when it failed or refused its config, 2 on bad input.
    Test {
        /// The plugin component.
        module: PathBuf,
        /// The request, as JSON: {"method", "path", "query", "headers": {name: value or
        /// [values]}, "body" or "body_base64", "client_ip", "route", "context": {key: value},
        /// "response": {"status", "headers", "body"} (the upstream's answer for the response
        /// phase)}. Every field is optional.
        #[arg(short, long)]
        request: Option<PathBuf>,
        /// The plugin's config: a TOML file with the content of its [plugins.NAME.config]
        /// table, or a .json file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Fix the plugin's clock (`clock.now-millis`) at these Unix milliseconds.
        #[arg(long)]
        now_ms: Option<u64>,
        /// Linear memory cap (the gateway's default is 32).
        #[arg(long, default_value_t = 32)]
        memory_limit_mb: usize,
        /// CPU deadline per call (the gateway's default is 100).
        #[arg(long, default_value_t = 100)]
        timeout_ms: u64,
        /// Cache compiled components here (large Python/JS components compile in seconds).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// The plugin's name: namespaces its state keys and tags its logs.
        #[arg(long, default_value = "plugin")]
        name: String,
        /// Run a scenario instead of one request: a TOML (or .json) file with the plugin's
        /// `config`, seeded `state`, a fixed clock (`now_ms`) and `[[steps]]`, each a `request`
        /// and what to `expect` (action, status, headers, body, context). Every step runs
        /// against the same instance. Prints a JSON report; exit code 0 when every step
        /// passed, 1 when one did not (or the plugin failed to load), 2 on bad input.
        #[arg(long, conflicts_with_all = ["request", "now_ms", "config", "name"])]
        scenario: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for signing plugin modules: OUT (private, PKCS#8 PEM) and OUT
    /// with the extension `.pub` (public, SPKI PEM), for `[gateway] trusted_keys`.
    Keygen {
        /// The private key file to write (e.g. `ops.pem`; `ops.pub` is written beside it).
        out: PathBuf,
    },
    /// Sign a module: writes MODULE.sig, an Ed25519 signature over the module's SHA-256
    /// (docs/rollout.md).
    Sign {
        /// The private key (PKCS#8 PEM, from `plugin keygen` or `openssl genpkey -algorithm ed25519`).
        #[arg(short, long)]
        key: PathBuf,
        /// The module to sign.
        module: PathBuf,
    },
    /// Check MODULE.sig against the module and the given public keys; exit 0 when valid.
    Verify {
        /// A trusted public key (SPKI PEM); repeat for several.
        #[arg(short, long, required = true)]
        key: Vec<PathBuf>,
        /// The module to check.
        module: PathBuf,
    },
    /// Create a Rust plugin crate that builds and passes its own tests.
    New {
        /// Crate name (lower case, digits, `-`, `_`).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The tollgate SDK folder to depend on by path (default: the one this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print the SHA-256 hex of an API key: the `hash` the `auth` plugin's config expects.
    /// Reads the key from standard input when it is not given (keeps it out of shell history).
    Hash {
        /// The key; omit to read one line from standard input.
        key: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Key {
        command: KeyCommand::Hash { key },
    } = &cli.command
    {
        return key_hash(key.as_deref());
    }
    if let Command::CompilePlugin { out, engine } = &cli.command {
        return tollgate::runtime::compile_process::run_child(out, engine);
    }
    if let Command::Plugin { command } = cli.command {
        return match command {
            PluginCommand::Test {
                module,
                request,
                config,
                now_ms,
                memory_limit_mb,
                timeout_ms,
                cache_dir,
                name,
                scenario,
            } => plugin_cli::test(plugin_cli::TestArgs {
                module,
                request,
                config,
                now_ms,
                memory_limit_mb,
                timeout_ms,
                cache_dir,
                name,
                scenario,
            }),
            PluginCommand::New { name, dir, sdk } => plugin_cli::new(&name, dir, sdk),
            PluginCommand::Keygen { out } => sign_cli::keygen(&out),
            PluginCommand::Sign { key, module } => sign_cli::sign(&key, &module),
            PluginCommand::Verify { key, module } => sign_cli::verify(&key, &module),
        };
    }
    tollgate::telemetry::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        // Handled above, without this runtime.
        Command::Key { .. } | Command::Plugin { .. } | Command::CompilePlugin { .. } => {
            ExitCode::SUCCESS
        }
        Command::Check { config } => runtime.block_on(check(config)),
        Command::Run { config, follow } => {
            // A long-running gateway compiles plugins in a child process (idle memory stays
            // what the plugins need, however they were loaded).
            if let Ok(exe) = std::env::current_exe() {
                tollgate::runtime::compile_process::compile_in_child_process(
                    exe,
                    tollgate::runtime::compile_process::COMPILE_TIME_LIMIT,
                );
            }
            let result = match follow.options() {
                Ok(Some(options)) => runtime.block_on(tollgate::follow::run(options)),
                Ok(None) => runtime.block_on(tollgate::gateway::run(config)),
                Err(e) => Err(anyhow::anyhow!(e)),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Control(args) => runtime.block_on(fleet_cli::control(args)),
        Command::Ctl(args) => runtime.block_on(fleet_cli::ctl(args)),
    }
}

async fn check(path: PathBuf) -> ExitCode {
    match tollgate::gateway::check(&path).await {
        Ok(summary) => {
            let mut lines = summary.lines();
            println!("{}: ok ({})", path.display(), lines.next().unwrap_or(""));
            for warning in lines {
                eprintln!("{warning}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tollgate key hash [KEY]`: SHA-256 of the key, lower-case hex, as the `auth` plugin stores it.
fn key_hash(key: Option<&str>) -> ExitCode {
    use sha2::{Digest, Sha256};
    let key = match key {
        Some(key) => key.to_owned(),
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("error: cannot read the key from standard input: {e}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if key.is_empty() {
        eprintln!("error: the key is empty");
        return ExitCode::FAILURE;
    }
    let hex: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("{hex}");
    ExitCode::SUCCESS
}
