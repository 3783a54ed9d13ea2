//! Reload on file change: watches the directories holding the config and every plugin module
//! (editors and builds replace files by rename, so the directory is what must be watched) and
//! reloads after changes to those exact files settle.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::gateway::Gateway;

/// Changes closer together than this are one reload (a build writes a file in several steps).
const SETTLE: Duration = Duration::from_millis(300);

/// Watch until `shutdown` completes.
pub async fn watch_files(gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; reload with SIGHUP or the admin API");
            return;
        }
    };
    let mut files = watch_set(&gateway, &mut watcher).await;
    loop {
        let path = tokio::select! {
            path = rx.recv() => match path { Some(p) => p, None => return },
            _ = &mut shutdown => return,
        };
        if !files.contains(&canonical(&path)) {
            continue;
        }
        // Let the writer finish, then take every queued event as part of this reload.
        tokio::time::sleep(SETTLE).await;
        while rx.try_recv().is_ok() {}
        tracing::info!(file = %path.display(), "file changed: reloading");
        let _ = gateway.reload().await;
        files = watch_set(&gateway, &mut watcher).await;
    }
}

/// Point the watcher at the directories of the current files; return the files to react to.
async fn watch_set(
    gateway: &Gateway,
    watcher: &mut notify::RecommendedWatcher,
) -> HashSet<PathBuf> {
    let files: HashSet<PathBuf> = gateway
        .watched_files()
        .await
        .iter()
        .map(|f| canonical(f))
        .collect();
    let dirs: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(PathBuf::from))
        .collect();
    for dir in dirs {
        // Watching a directory twice is harmless; a failure only loses automatic reloads.
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
        }
    }
    files
}

/// The absolute form of a path whose file may not exist right now (mid-rename).
fn canonical(path: &std::path::Path) -> PathBuf {
    match (
        path.parent().and_then(|d| d.canonicalize().ok()),
        path.file_name(),
    ) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}
