//! `tollgate ctl`: push and read configs on a control plane. `apply -f gateway.toml` uploads
//! the plugin modules the config names (by SHA-256) and stores the config as a new revision
//! once the control plane has validated it; `diff` shows what `apply` would change; `get`
//! prints a revision; `history` lists them; `rollback N` makes revision N current again;
//! `canary promote|rollback NAME` changes a plugin's canary for the whole fleet.

pub mod client;
mod prepare;

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;

pub use client::{ClientError, ControlClient};
pub use prepare::{Prepared, prepare};

/// What a `ctl` command does.
pub enum Action {
    /// Validate and store a config file as a new revision.
    Apply {
        /// The config file.
        file: PathBuf,
        /// Why (kept with the revision).
        message: String,
        /// Validate only.
        dry_run: bool,
    },
    /// Diff a config file against the current revision.
    Diff {
        /// The config file.
        file: PathBuf,
    },
    /// Print a revision's config (`current` by default).
    Get {
        /// Revision id or `current`.
        revision: String,
    },
    /// List revisions.
    History,
    /// Make an old revision current again (as a new revision).
    Rollback {
        /// Revision id.
        revision: i64,
        /// Why.
        message: String,
    },
    /// Promote or roll back a plugin entry's canary for the whole fleet (a new revision).
    Canary {
        /// The `[plugins.NAME]` entry.
        plugin: String,
        /// `promote` or `rollback`.
        action: CanaryVerb,
        /// Why.
        message: String,
    },
}

/// What `ctl canary` does to a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryVerb {
    /// Its module and config become the entry's.
    Promote,
    /// It is removed; the entry's own module serves all traffic.
    Rollback,
}

const TIMEOUT: Duration = Duration::from_secs(60);

/// Run one `ctl` command; the process exit code (0 ok, 1 refused or failed).
pub async fn run(client: &ControlClient, action: Action) -> u8 {
    let result = match action {
        Action::Apply {
            file,
            message,
            dry_run,
        } => apply(client, &file, &message, dry_run).await,
        Action::Diff { file } => diff(client, &file).await,
        Action::Get { revision } => get(client, &revision).await,
        Action::History => history(client).await,
        Action::Rollback { revision, message } => {
            let body = serde_json::json!({ "message": message });
            let path = format!("/v1/revisions/{revision}/rollback");
            client
                .json(Method::POST, &path, Some(&body), TIMEOUT)
                .await
                .map(|r| println!("revision {} stored (rollback to {revision})", r["id"]))
        }
        Action::Canary {
            plugin,
            action,
            message,
        } => {
            let verb = match action {
                CanaryVerb::Promote => "promote",
                CanaryVerb::Rollback => "rollback",
            };
            let body = serde_json::json!({ "message": message });
            let path = format!("/v1/plugins/{plugin}/{verb}");
            client
                .json(Method::POST, &path, Some(&body), TIMEOUT)
                .await
                .map(|r| {
                    println!(
                        "revision {} stored ({verb} the canary of {plugin})",
                        r["id"]
                    )
                })
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            report(&e);
            1
        }
    }
}

/// Print an error; an invalid config as one `path: message` line per issue.
fn report(e: &ClientError) {
    if let ClientError::Status { body, .. } = e
        && let Some(issues) = body.get("issues").and_then(|i| i.as_array())
    {
        eprintln!("error: {}", body["message"].as_str().unwrap_or("refused"));
        for issue in issues {
            let path = issue["path"].as_str().unwrap_or("");
            let message = issue["message"].as_str().unwrap_or("");
            match path {
                "" => eprintln!("  - {message}"),
                _ => eprintln!("  - {path}: {message}"),
            }
        }
        return;
    }
    eprintln!("error: {e}");
}

/// Prepare a file, or print its issues.
fn prepared(file: &Path) -> Result<Prepared, ClientError> {
    prepare(file).map_err(|issues| ClientError::Status {
        status: http::StatusCode::UNPROCESSABLE_ENTITY,
        body: serde_json::json!({
            "message": format!("`{}` names modules that cannot be read; nothing was sent", file.display()),
            "issues": issues.iter().map(|i| serde_json::json!({"path": i.path, "message": i.message})).collect::<Vec<_>>(),
        }),
    })
}

async fn apply(
    client: &ControlClient,
    file: &Path,
    message: &str,
    dry_run: bool,
) -> Result<(), ClientError> {
    let prepared = prepared(file)?;
    for (hash, bytes) in prepared.modules {
        let path = format!("/v1/modules/{hash}");
        client
            .call(
                Method::PUT,
                &path,
                Some(("application/wasm", bytes)),
                TIMEOUT,
            )
            .await?;
    }
    for (hash, sig) in prepared.signatures {
        let path = format!("/v1/modules/{hash}/signatures");
        client
            .call(Method::PUT, &path, Some(("application/json", sig)), TIMEOUT)
            .await?;
    }
    let body =
        serde_json::json!({ "config": prepared.text, "message": message, "dry_run": dry_run });
    let answer = client
        .json(Method::POST, "/v1/revisions", Some(&body), TIMEOUT)
        .await?;
    if dry_run {
        println!("{}: valid (nothing stored)", file.display());
    } else if answer["unchanged"] == serde_json::json!(true) {
        println!(
            "unchanged: revision {} is already this config",
            answer["id"]
        );
    } else {
        println!("revision {} stored", answer["id"]);
    }
    Ok(())
}

async fn diff(client: &ControlClient, file: &Path) -> Result<(), ClientError> {
    let prepared = prepared(file)?;
    let current = match client
        .json(Method::GET, "/v1/revisions/current", None, TIMEOUT)
        .await
    {
        Ok(r) => r["config"].as_str().unwrap_or("").to_owned(),
        Err(ClientError::Status { status, .. }) if status == http::StatusCode::NOT_FOUND => {
            String::new()
        }
        Err(e) => return Err(e),
    };
    let name = file.display().to_string();
    let text = crate::control::diff_text(&current, &prepared.text, "current", &name);
    if text.is_empty() {
        println!("no changes");
    } else {
        print!("{text}");
    }
    Ok(())
}

async fn get(client: &ControlClient, revision: &str) -> Result<(), ClientError> {
    let r = client
        .json(
            Method::GET,
            &format!("/v1/revisions/{revision}"),
            None,
            TIMEOUT,
        )
        .await?;
    print!("{}", r["config"].as_str().unwrap_or(""));
    Ok(())
}

async fn history(client: &ControlClient) -> Result<(), ClientError> {
    let list = client
        .json(Method::GET, "/v1/revisions", None, TIMEOUT)
        .await?;
    for r in list.as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}\t{}",
            r["id"],
            r["created_ms"],
            r["author"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
