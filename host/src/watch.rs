//! Reload on file change: watches the directories holding the config and every plugin module
//! (editors and builds replace files by rename, so the directory is what must be watched) and
//! reloads after changes to those exact files settle.
//!
//! Only events that can change a file's content count: close-after-write, writes, renames,
//! creation and removal. Opening or reading a file (the gateway's own reload reads every module,
//! and so does another gateway watching the same module) is not a change, so a reload never
//! triggers the next one. A reload whose inputs turn out unchanged (a `touch`, a save without
//! edits) is skipped by [`Gateway::reload`].

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::gateway::Gateway;

/// A change is acted on once no further change came for this long (an editor or a build writes
/// a file in several steps).
const QUIET: Duration = Duration::from_millis(100);
/// A file that keeps changing is reloaded at least this often.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A watcher already pointed at the gateway's files: changes made from now on are seen, also
/// those made before [`Watching::run`] is first polled.
pub struct Watching {
    gateway: Arc<Gateway>,
    watcher: notify::RecommendedWatcher,
    rx: mpsc::UnboundedReceiver<PathBuf>,
    files: HashSet<PathBuf>,
}

/// Start watching the gateway's files (before it reports ready, so no edit made after that can
/// be missed); `None` when the platform cannot watch files (logged).
pub async fn start(gateway: Arc<Gateway>) -> Option<Watching> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| match event {
            Ok(event) if event.need_rescan() => {
                // The kernel dropped events: anything may have changed.
                let _ = tx.send(PathBuf::new());
            }
            Ok(event) if changes_content(&event.kind) => {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            _ => {}
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; reload with SIGHUP or the admin API");
            return None;
        }
    };
    let files = watch_set(&gateway, &mut watcher).await;
    Some(Watching {
        gateway,
        watcher,
        rx,
        files,
    })
}

impl Watching {
    /// Reload on every change until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            gateway,
            mut watcher,
            mut rx,
            mut files,
        } = self;
        tokio::pin!(shutdown);
        loop {
            let path = tokio::select! {
                path = rx.recv() => match path { Some(p) => p, None => return },
                _ = &mut shutdown => return,
            };
            let relevant = |p: &Path| p.as_os_str().is_empty() || files.contains(&canonical(p));
            if !relevant(&path) {
                continue;
            }
            // Let the writer finish: wait for a quiet spell, taking every change meanwhile as part
            // of this reload.
            let deadline = Instant::now() + MAX_WAIT;
            loop {
                let quiet = (Instant::now() + QUIET).min(deadline);
                match tokio::time::timeout_at(quiet, rx.recv()).await {
                    Ok(Some(_)) if Instant::now() < deadline => continue,
                    Ok(None) => return,
                    _ => break,
                }
            }
            tracing::info!(file = %path.display(), "file changed: reloading");
            let _ = gateway.reload().await;
            files = watch_set(&gateway, &mut watcher).await;
        }
    }
}

/// True for events that may change what a file holds. Opening, reading and closing a file that
/// was only read are not changes, nor are metadata changes (the reload reads content).
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
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

/// The absolute form of a path whose file may not exist right now (mid-rename): its directory
/// made canonical (a bare `gateway.toml` lives in the current directory), joined with its name.
fn canonical(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        let cwd = std::env::current_dir()
            .and_then(|d| d.canonicalize())
            .expect("cwd");
        assert_eq!(
            canonical(Path::new("gateway.toml")),
            cwd.join("gateway.toml")
        );
        assert_eq!(
            canonical(Path::new("./gateway.toml")),
            cwd.join("gateway.toml")
        );
    }

    #[test]
    fn reads_are_not_changes() {
        let changes = [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ];
        let not = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
        ];
        assert!(changes.iter().all(changes_content));
        assert!(!not.iter().any(changes_content));
    }
}
