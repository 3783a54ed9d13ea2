//! The `tollgate` command: run the gateway, or check a config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        /// Config file.
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Validate a config (including each plugin's own config) and print every error.
    Check {
        /// Config file.
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Helpers for the `auth` plugin's API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
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
        Command::Key { .. } => ExitCode::SUCCESS, // handled above, without a runtime
        Command::Check { config } => runtime.block_on(check(config)),
        Command::Run { config } => match runtime.block_on(tollgate::gateway::run(config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn check(path: PathBuf) -> ExitCode {
    match tollgate::gateway::check(&path).await {
        Ok(summary) => {
            println!("{}: ok ({summary})", path.display());
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
