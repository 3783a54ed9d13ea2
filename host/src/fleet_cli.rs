//! The fleet commands of the `tollgate` binary: `tollgate control` (the control plane),
//! `tollgate ctl ...` (its client) and `tollgate run --control URL` (a following gateway).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `tollgate control`.
#[derive(Args)]
pub struct ControlArgs {
    /// Address of the control API.
    #[arg(long, default_value = "127.0.0.1:9700")]
    listen: SocketAddr,
    /// `sqlite://FILE` (created when absent) or `postgres://user@host:port/db`.
    #[arg(long, default_value = "sqlite://tollgate-control.db")]
    database: String,
    /// Work directory (modules being checked, compile cache).
    #[arg(long, default_value = ".tollgate-control")]
    work_dir: PathBuf,
    /// Environment variable holding an admin token to create at start (bootstrap; at least
    /// 16 characters). Create the other tokens with `POST /v1/tokens`.
    #[arg(long, default_value = "TOLLGATE_ADMIN_TOKEN")]
    admin_token_env: String,
    /// Serve TLS with this certificate chain (PEM); needs `--tls-key`.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Who may create a developer account in the portal (`/portal`): `open` (anyone),
    /// `invite` (with a code from `POST /v1/invites`) or `closed`.
    #[arg(long, default_value = "invite", value_parser = parse_signup)]
    portal_signup: tollgate::control::SignUp,
    #[command(flatten)]
    alerts: tollgate::control::AlertArgs,
}

fn parse_signup(text: &str) -> Result<tollgate::control::SignUp, String> {
    tollgate::control::SignUp::parse(text)
        .ok_or_else(|| format!("{text:?}: expected open, invite or closed"))
}

/// Where `ctl` and a following gateway find the control plane.
#[derive(Args)]
pub struct Connection {
    /// Control plane URL (`http://` or `https://`).
    #[arg(long, default_value = "http://127.0.0.1:9700")]
    url: String,
    /// Environment variable holding the bearer token.
    #[arg(long, default_value = "TOLLGATE_TOKEN")]
    token_env: String,
    /// CA bundle (PEM) to trust for an `https://` control plane.
    #[arg(long)]
    ca: Option<PathBuf>,
}

/// `tollgate ctl`.
#[derive(Args)]
pub struct CtlArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Subcommand)]
enum CtlCommand {
    /// Validate a config on the control plane (as `tollgate check`) and store it as a new
    /// revision; uploads the plugin modules it names. Nothing is stored when it is invalid.
    Apply {
        /// The config file.
        #[arg(short, long)]
        file: PathBuf,
        /// Why (kept with the revision and in the audit log).
        #[arg(short, long, default_value = "")]
        message: String,
        /// Validate only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what `apply` would change, as a unified diff against the current revision.
    Diff {
        /// The config file.
        #[arg(short, long)]
        file: PathBuf,
    },
    /// Print a revision's config.
    Get {
        /// Revision id, or `current`.
        #[arg(default_value = "current")]
        revision: String,
    },
    /// List revisions: id, time (Unix ms), author, message.
    History,
    /// Store an old revision's config again as the newest revision.
    Rollback {
        /// The revision to go back to.
        revision: i64,
        /// Why.
        #[arg(short, long, default_value = "")]
        message: String,
    },
    /// Promote a plugin's canary (its module and config become the entry's) or roll it back
    /// (removed), for the whole fleet: stored as a new revision.
    Canary {
        /// `promote` or `rollback`.
        #[arg(value_enum)]
        action: CanaryCommand,
        /// The `[plugins.NAME]` entry.
        plugin: String,
        /// Why.
        #[arg(short, long, default_value = "")]
        message: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CanaryCommand {
    Promote,
    Rollback,
}

/// `tollgate run --control URL` options.
#[derive(Args)]
pub struct FollowArgs {
    /// Follow this control plane instead of reading a config file.
    #[arg(long)]
    control: Option<String>,
    /// Environment variable holding the node token.
    #[arg(long, default_value = "TOLLGATE_NODE_TOKEN")]
    node_token_env: String,
    /// CA bundle (PEM) for an `https://` control plane.
    #[arg(long, requires = "control")]
    control_ca: Option<PathBuf>,
    /// Where the last good revision, its modules and the key table are kept.
    #[arg(long, default_value = ".tollgate-node")]
    state_dir: PathBuf,
    /// This gateway's name in the control plane's reports (default: the host name and pid).
    #[arg(long, requires = "control")]
    node_name: Option<String>,
}

impl FollowArgs {
    /// The follow options when `--control` is given.
    pub fn options(&self) -> Result<Option<tollgate::follow::Options>, String> {
        let Some(url) = &self.control else {
            return Ok(None);
        };
        let token = secret(&self.node_token_env)?;
        let node = self.node_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        Ok(Some(tollgate::follow::Options {
            url: url.clone(),
            token,
            ca: self.control_ca.clone(),
            state_dir: self.state_dir.clone(),
            node,
        }))
    }
}

/// The value of environment variable `name`, which must be set and non-empty.
fn secret(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(format!("set the token in the environment variable {name}")),
    }
}

/// `tollgate control`: serve until SIGTERM or SIGINT.
pub async fn control(args: ControlArgs) -> ExitCode {
    let alerts = match args.alerts.options() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = tollgate::control::Options {
        addr: args.listen,
        database: args.database,
        work_dir: args.work_dir,
        bootstrap_admin_token: secret(&args.admin_token_env).ok(),
        tls: args.tls_cert.zip(args.tls_key),
        signup: args.portal_signup,
        alerts,
    };
    let running = match tollgate::control::start(options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("control plane listening on {}", running.addr);
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut t), Ok(mut i)) => tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} },
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        () = running.wait() => ExitCode::FAILURE,
        () = term => ExitCode::SUCCESS,
    }
}

/// `tollgate ctl ...`.
pub async fn ctl(args: CtlArgs) -> ExitCode {
    let token = match secret(&args.connection.token_env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let client = match tollgate::ctl::ControlClient::new(
        &args.connection.url,
        &token,
        args.connection.ca.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    use tollgate::ctl::Action;
    let action = match args.command {
        CtlCommand::Apply {
            file,
            message,
            dry_run,
        } => Action::Apply {
            file,
            message,
            dry_run,
        },
        CtlCommand::Diff { file } => Action::Diff { file },
        CtlCommand::Get { revision } => Action::Get { revision },
        CtlCommand::History => Action::History,
        CtlCommand::Rollback { revision, message } => Action::Rollback { revision, message },
        CtlCommand::Canary {
            action,
            plugin,
            message,
        } => Action::Canary {
            plugin,
            action: match action {
                CanaryCommand::Promote => tollgate::ctl::CanaryVerb::Promote,
                CanaryCommand::Rollback => tollgate::ctl::CanaryVerb::Rollback,
            },
            message,
        },
    };
    ExitCode::from(tollgate::ctl::run(&client, action).await)
}
