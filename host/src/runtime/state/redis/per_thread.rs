//! One Redis connection (a node's `ConnectionManager`, or a cluster's lazy connection) per
//! thread that uses the backend.
//!
//! A connection runs as a task on the runtime it was opened on. Shared by the whole process,
//! that task lived on the control runtime, so each command a worker sent crossed threads twice
//! (the command to the connection task, the reply back), and on a pinned core each crossing was
//! a context switch: 8 per request in the benchmark's `chain7-redis` case (three round trips).
//! Each thread (each worker's current-thread runtime, each thread of the control runtime) now
//! opens its own, lazily on its first call, so a worker's commands and replies stay on the
//! worker.
//!
//! The connections live in a `thread_local!` list keyed by the backend's id, so a thread that
//! exits drops its connections with it; a backend that is dropped (a reload that changed
//! `[state]`) leaves an entry per thread behind until that thread opens its next connection,
//! which prunes the dead ones.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::{Conn, StateError};

/// Ids of backends, unique within the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One thread's connection for one backend.
struct Entry {
    backend: u64,
    /// Dead once the backend is dropped: the entry is pruned.
    alive: Weak<()>,
    conn: Conn,
}

thread_local! {
    static CONNECTIONS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Opens a connection handle for the calling thread (connecting nothing yet).
pub(super) type Open = Box<dyn Fn() -> Result<Conn, StateError> + Send + Sync>;

/// How a backend opens connections, and the key of its per-thread connections.
pub(super) struct PerThread {
    id: u64,
    alive: Arc<()>,
    open: Open,
}

impl PerThread {
    /// Check that `open` works (it connects nothing yet) and keep its handle for the calling
    /// thread.
    pub(super) fn new(open: Open) -> Result<Self, StateError> {
        let per_thread = Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            open,
        };
        per_thread.get()?;
        Ok(per_thread)
    }

    /// This thread's connection, opened on this thread's runtime the first time. It connects
    /// on its first command and reconnects by itself.
    pub(super) fn get(&self) -> Result<Conn, StateError> {
        CONNECTIONS.with_borrow_mut(|entries| {
            if let Some(entry) = entries.iter().find(|e| e.backend == self.id) {
                return Ok(entry.conn.clone());
            }
            entries.retain(|e| e.alive.strong_count() > 0);
            let conn = (self.open)()?;
            entries.push(Entry {
                backend: self.id,
                alive: Arc::downgrade(&self.alive),
                conn: conn.clone(),
            });
            Ok(conn)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::super::cluster::LazyCluster;
    use super::*;

    /// A backend whose connections are cluster handles (they connect nothing until used).
    fn backend() -> PerThread {
        PerThread::new(Box::new(|| {
            let nodes = ["redis://127.0.0.1:1".to_owned()];
            LazyCluster::new(&nodes, Duration::from_millis(50))
                .map(|lazy| Conn::Cluster(Arc::new(lazy)))
        }))
        .unwrap()
    }

    fn cluster(conn: Conn) -> Arc<LazyCluster> {
        match conn {
            Conn::Cluster(lazy) => lazy,
            Conn::Node(_) => panic!("a node connection"),
        }
    }

    fn live_entries() -> usize {
        CONNECTIONS.with_borrow(|entries| live_entries_in(entries))
    }

    #[test]
    fn a_thread_keeps_its_connection_and_another_thread_opens_its_own() {
        let per_thread = backend();
        let here = cluster(per_thread.get().unwrap());
        assert!(Arc::ptr_eq(&here, &cluster(per_thread.get().unwrap())));
        let there = std::thread::scope(|s| {
            s.spawn(|| {
                let first = cluster(per_thread.get().unwrap());
                assert!(Arc::ptr_eq(&first, &cluster(per_thread.get().unwrap())));
                first
            })
            .join()
            .unwrap()
        });
        assert!(!Arc::ptr_eq(&here, &there));
    }

    #[test]
    fn a_dropped_backends_connections_are_pruned_by_the_next_one() {
        let old = backend();
        old.get().unwrap();
        drop(old);
        assert_eq!(live_entries(), 0);
        let new = backend();
        new.get().unwrap();
        let (total, live) =
            CONNECTIONS.with_borrow(|entries| (entries.len(), live_entries_in(entries)));
        assert_eq!((total, live), (1, 1));
    }

    fn live_entries_in(entries: &[Entry]) -> usize {
        entries
            .iter()
            .filter(|e| e.alive.strong_count() > 0)
            .count()
    }
}
