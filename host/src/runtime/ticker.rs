//! The epoch ticker: a thread that advances the engine's epoch every tick, so each call's epoch
//! deadline (see `plugin`) interrupts or yields a guest that runs too long.
//!
//! It ticks only while guest code may be running. A call holds a [`Ticking`] guard for as long
//! as it runs; after [`IDLE_TICKS`] ticks with no guard held the thread parks, and the next guard
//! wakes it. An empty chain (no plugin calls) then costs no wake-ups at all, and a busy chain pays
//! one atomic increment and decrement per call, plus one `unpark` after each idle spell. On a
//! pinned core every wake-up of this thread preempts a worker, so this matters for throughput.
//!
//! No call can miss its deadline: a guard is counted before the call sets its deadline, and the
//! thread rechecks the count after announcing that it parks (both `SeqCst`), so either the thread
//! sees the call or the call sees the thread parked and unparks it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::{Engine, EngineWeak};

use super::error::RuntimeError;

/// Ticks without a running call before the thread parks.
const IDLE_TICKS: u32 = 16;

/// What the ticker thread and the calls share.
struct Shared {
    /// Calls (or instantiations) running guest code now.
    active: AtomicUsize,
    /// The thread has parked (or is about to): a new call must unpark it.
    parked: AtomicBool,
    /// Set when the ticker is dropped.
    stop: AtomicBool,
}

/// Advances the engine's epoch every tick while guest code runs, until dropped.
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Held while guest code may run: keeps the ticker ticking.
pub(crate) struct Ticking<'a> {
    shared: &'a Shared,
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> Result<Self, RuntimeError> {
        let shared = Arc::new(Shared {
            active: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let weak = engine.weak();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tollgate-epoch".into())
            .spawn(move || run(&weak, &thread_shared, tick))
            .map_err(|e| RuntimeError::Engine(wasmtime::Error::from(e)))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Count a call that is about to run guest code; hold the guard until it returns.
    pub(crate) fn running(&self) -> Ticking<'_> {
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst) {
            self.shared.parked.store(false, Ordering::SeqCst);
            if let Some(thread) = &self.thread {
                thread.thread().unpark();
            }
        }
        Ticking {
            shared: &self.shared,
        }
    }
}

/// The thread's loop: tick, catch up when it overslept, park when idle.
fn run(weak: &EngineWeak, shared: &Shared, tick: Duration) {
    let tick_nanos = tick.as_nanos().max(1);
    let mut started = Instant::now();
    let mut done: u128 = 0;
    let mut idle = 0u32;
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        let Some(engine) = weak.upgrade() else { break };
        // Catch up when the thread oversleeps (a loaded machine), so deadlines follow wall
        // time rather than the number of wake-ups.
        let due = started.elapsed().as_nanos() / tick_nanos;
        while done < due {
            engine.increment_epoch();
            done += 1;
        }
        drop(engine);
        if shared.active.load(Ordering::SeqCst) > 0 {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < IDLE_TICKS {
            continue;
        }
        park_until_needed(shared);
        // Time spent parked is not owed to anyone: restart the count from now.
        started = Instant::now();
        done = 0;
        idle = 0;
    }
}

/// Park until a call arrives (or the ticker stops).
fn park_until_needed(shared: &Shared) {
    shared.parked.store(true, Ordering::SeqCst);
    while shared.parked.load(Ordering::SeqCst)
        && shared.active.load(Ordering::SeqCst) == 0
        && !shared.stop.load(Ordering::Relaxed)
    {
        std::thread::park();
    }
    shared.parked.store(false, Ordering::SeqCst);
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
