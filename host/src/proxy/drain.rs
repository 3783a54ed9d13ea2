//! Work that outlives its response: the log phase runs after the client has the last byte, so
//! shutdown must wait for it as well as for connections. A process-wide count of log tasks.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

static PENDING: AtomicUsize = AtomicUsize::new(0);
static DONE: Notify = Notify::const_new();

/// Decrements the count when the task ends, however it ends.
struct Pending;

impl Drop for Pending {
    fn drop(&mut self) {
        if PENDING.fetch_sub(1, Ordering::AcqRel) == 1 {
            DONE.notify_waiters();
        }
    }
}

/// Run a log-phase future in the background, counted until it finishes.
pub(crate) fn spawn_log(task: impl Future<Output = ()> + Send + 'static) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    PENDING.fetch_add(1, Ordering::AcqRel);
    let pending = Pending;
    runtime.spawn(async move {
        task.await;
        drop(pending);
    });
}

/// Log-phase tasks still running.
pub fn pending_log_tasks() -> usize {
    PENDING.load(Ordering::Acquire)
}

/// Wait until no log-phase task is running (callers bound this with the drain deadline).
pub async fn log_phase_drained() {
    loop {
        let done = DONE.notified();
        tokio::pin!(done);
        // Register before checking, so a task ending in between still wakes us.
        done.as_mut().enable();
        if pending_log_tasks() == 0 {
            return;
        }
        done.await;
    }
}
