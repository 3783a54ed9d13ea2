//! `tollgate run --control URL`: a gateway that follows a control plane. It watches for new
//! revisions and key changes with one long poll at a time (`GET /v1/node/watch`, answered the
//! moment something changes), applies a revision through the gateway's ordinary hot swap
//! (`Gateway::reload` of the config in its state directory, so in-flight requests finish on the
//! old chains and a revision that fails changes nothing), writes the key table into the state
//! its auth plugins read, and reports its applied revision, health and counters. It keeps its
//! last good revision and key table on disk (`disk`) and serves them when the control plane is
//! down, across its own restarts too; it reconnects with backoff. Every few seconds it reports
//! the usage its proxy counted (`usage`, `crate::proxy::tally`).

mod apply;
mod disk;
mod keys;
mod usage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::ctl::{ClientError, ControlClient};
use crate::gateway::Running;
pub use disk::Disk;
pub use keys::{KeyEntry, KeyTable};

/// How to follow.
#[derive(Debug, Clone)]
pub struct Options {
    /// Control plane base URL.
    pub url: String,
    /// Node token.
    pub token: String,
    /// CA bundle to trust for an `https://` control plane.
    pub ca: Option<PathBuf>,
    /// Where the last good revision, its modules and the key table are kept.
    pub state_dir: PathBuf,
    /// This gateway's name in reports.
    pub node: String,
}

/// Start following: get a revision (from the control plane, or the last good one on disk),
/// start serving it, and keep following in the background. Returns the running gateway.
pub async fn start(options: Options) -> anyhow::Result<Running> {
    let disk = Disk::open(&options.state_dir)?;
    let client = ControlClient::new(&options.url, &options.token, options.ca.as_deref())?;
    let follower = apply::Follower::new(client.clone(), disk, options.node.clone());
    let revision = follower.first_revision().await?;
    crate::admin::install_metrics_recorder();
    let running = crate::gateway::start_at(&follower.disk.config_path(), Some(revision)).await?;
    // Requests are counted from here on (before keys arrive, so that none is missed) and
    // reported with the node token.
    let tally = Arc::new(crate::proxy::tally::Tally::default());
    running.gateway.proxy().set_tally(tally.clone());
    let follower = Arc::new(follower.serving(running.gateway.clone(), revision, &running));
    follower.first_keys().await;
    tokio::spawn(follow(follower));
    tokio::spawn(usage::report_loop(client, options.node, tally));
    Ok(running)
}

/// `tollgate run --control`: start following, then serve until SIGTERM or SIGINT.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let running = start(options).await?;
    crate::gateway::serve_until_signal(running).await
}

/// Backoff between failed calls: 200 ms doubling to 5 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << failures.min(5)).min(5000))
}

/// The watch loop: wait for a change, apply it, report; on failure back off and retry.
async fn follow(f: Arc<apply::Follower>) {
    let mut failures = 0u32;
    loop {
        let (revision, keys) = f.cursor();
        let path = format!("/v1/node/watch?revision={revision}&keys={keys}&wait_ms=20000");
        match f
            .client
            .json(Method::GET, &path, None, Duration::from_secs(30))
            .await
        {
            Ok(cursor) => {
                if failures > 0 {
                    tracing::info!("control plane reachable again");
                }
                failures = 0;
                let want_rev = cursor["revision"].as_i64().unwrap_or(0);
                let want_keys = cursor["keys"].as_i64().unwrap_or(0);
                if want_rev > 0 && want_rev != revision {
                    f.apply(want_rev).await;
                }
                if want_keys != keys {
                    f.refresh_keys().await;
                } else if want_rev == revision {
                    // A quiet watch: write the table again, in case the state lost entries
                    // (the memory backend evicts under pressure, Redis may have been flushed).
                    f.write_keys().await;
                }
                f.report().await;
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(error = %e, "control plane unreachable; serving the last good revision");
                }
                if let ClientError::Status { status, .. } = &e
                    && (*status == http::StatusCode::UNAUTHORIZED
                        || *status == http::StatusCode::FORBIDDEN)
                {
                    tracing::error!("the node token is refused by the control plane");
                }
                failures = failures.saturating_add(1);
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}
