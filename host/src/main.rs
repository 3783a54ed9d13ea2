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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
