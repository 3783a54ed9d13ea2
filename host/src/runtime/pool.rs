//! A plugin's instances: warm ones idle on a stack, a cap on how many are alive at once
//! (`max_instances`), and replacements created off the request path.
//!
//! A request never runs `init` itself: when no instance is idle it asks for one to be made in
//! the background (on a blocking thread, with the init deadline) and waits for an instance to
//! come back or be made, up to its wait bound; then it fails `unavailable`. At most
//! [`MAX_CREATING`] instances of one plugin are being made at once, so a plugin whose `init`
//! spins or fails cannot burn more than that many threads however many requests arrive.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::bindings::PluginPre;
use super::host_state::{HostState, PluginShared};
use super::plugin::{NewInstanceError, Warm, new_instance};
use super::runtime::RuntimeInner;
use crate::config::PluginSpec;

/// Most instances of one plugin being created at the same time.
const MAX_CREATING: usize = 2;

/// What a replacement instance is made from.
pub(crate) struct Factory {
    pub(crate) rt: Arc<RuntimeInner>,
    pub(crate) pre: PluginPre<HostState>,
    pub(crate) spec: PluginSpec,
    pub(crate) shared: Arc<PluginShared>,
}

/// The instances of one plugin.
pub(crate) struct Pool {
    factory: Factory,
    idle: Mutex<Vec<Warm>>,
    /// Instances alive (idle, busy or being created).
    live: AtomicUsize,
    creating: AtomicUsize,
    /// Signalled when an instance goes back to `idle` or a slot frees up, when someone waits.
    returned: Notify,
    waiters: AtomicUsize,
    max_idle: usize,
    max_instances: usize,
    min_idle: usize,
    created: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Pool {
    pub(crate) fn new(factory: Factory, warm: Vec<Warm>, max_idle: usize) -> Arc<Self> {
        let min_idle = factory.spec.pool_size.max(1);
        let max_instances = factory.spec.max_instances.max(min_idle);
        Arc::new(Self {
            live: AtomicUsize::new(warm.len()),
            created: AtomicU64::new(warm.len() as u64),
            idle: Mutex::new(warm),
            factory,
            creating: AtomicUsize::new(0),
            returned: Notify::new(),
            waiters: AtomicUsize::new(0),
            max_idle: max_idle.max(min_idle),
            max_instances,
            min_idle,
            last_error: Mutex::new(None),
        })
    }

    /// Instances idle right now.
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Instances created since load (at load and as replacements).
    pub(crate) fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn pop(&self) -> Option<Warm> {
        self.idle.lock().ok()?.pop()
    }

    /// An idle instance, or one made in the background within `wait`; else why not.
    async fn checkout(self: &Arc<Self>, wait: Duration) -> Result<Warm, String> {
        if let Some(w) = self.pop() {
            return Ok(w);
        }
        // Counted while waiting, also when this future is dropped mid-wait (the client went
        // away): a stale count would make every later checkin notify nobody.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiters);
        self.wait_for_instance(wait).await
    }

    async fn wait_for_instance(self: &Arc<Self>, wait: Duration) -> Result<Warm, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(w) = self.pop() {
                return Ok(w);
            }
            self.spawn_replacement();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pop().ok_or_else(|| self.unavailable());
            }
            if let Some(w) = self.pop() {
                return Ok(w);
            }
        }
    }

    fn unavailable(&self) -> String {
        let last = self.last_error.lock().ok().and_then(|e| e.clone());
        match last {
            Some(e) => format!("no instance available: cannot create one: {e}"),
            None => format!(
                "no instance available: all {} instances are busy",
                self.max_instances
            ),
        }
    }

    /// Back to the idle stack after a call that went well (dropped when the stack is full).
    fn checkin(&self, w: Warm) {
        let kept = match self.idle.lock() {
            Ok(mut idle) if idle.len() < self.max_idle => {
                idle.push(w);
                true
            }
            _ => false,
        };
        if !kept {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
        self.wake();
    }

    /// Wake one waiting checkout; free when nobody waits (the common case).
    fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.returned.notify_one();
        }
    }

    /// Drop an instance that failed; replace it in the background when below `pool_size`.
    fn discard(self: &Arc<Self>, w: Warm) {
        drop(w);
        self.lost();
    }

    /// An instance that was checked out is gone: give its slot back.
    fn lost(self: &Arc<Self>) {
        let live = self.live.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        if live < self.min_idle {
            self.spawn_replacement();
        }
        self.wake();
    }

    /// A lease for one call's instance (see [`Lease`]); it holds nothing until its checkout.
    pub(crate) fn lease(self: &Arc<Self>) -> Lease<'_> {
        Lease {
            pool: self,
            out: false,
        }
    }

    /// Start making one instance on a blocking thread, unless [`MAX_CREATING`] are already
    /// being made or `max_instances` are alive.
    fn spawn_replacement(self: &Arc<Self>) {
        if self.creating.fetch_add(1, Ordering::AcqRel) >= MAX_CREATING {
            self.creating.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let reserved = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_instances).then_some(n + 1)
            })
            .is_ok();
        let handle = match (reserved, tokio::runtime::Handle::try_current()) {
            (true, Ok(handle)) => handle,
            (reserved, _) => {
                if reserved {
                    self.live.fetch_sub(1, Ordering::AcqRel);
                }
                self.creating.fetch_sub(1, Ordering::AcqRel);
                return;
            }
        };
        let pool = Arc::clone(self);
        let runtime = handle.clone();
        handle.spawn_blocking(move || {
            let f = &pool.factory;
            let made = runtime.block_on(new_instance(&f.rt, &f.pre, &f.spec, &f.shared));
            pool.creating.fetch_sub(1, Ordering::AcqRel);
            match made {
                Ok((w, _)) => {
                    pool.created.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut last) = pool.last_error.lock() {
                        *last = None;
                    }
                    pool.checkin(w);
                }
                Err(NewInstanceError::Instantiate(e) | NewInstanceError::Init(e)) => {
                    pool.live.fetch_sub(1, Ordering::AcqRel);
                    tracing::warn!(plugin = %f.spec.name, "cannot create an instance: {e}");
                    if let Ok(mut last) = pool.last_error.lock() {
                        *last = Some(e);
                    }
                }
            }
        });
    }
}

/// One call's hold on an instance, from [`Lease::checkout`] until [`Lease::checkin`] or
/// [`Lease::discard`]. When the call's future is dropped in between (the client went away while
/// the plugin waited on a fetch or on Redis), the instance is dropped with it, mid-call, and the
/// lease gives its slot back on drop: otherwise the pool would count it as busy for ever and,
/// past `max_instances` such losses, answer every request `unavailable`. A lease whose checkout
/// was dropped or failed holds nothing and gives nothing back. Declare it before the instance,
/// so that the instance is dropped first.
pub(crate) struct Lease<'p> {
    pool: &'p Arc<Pool>,
    out: bool,
}

impl Lease<'_> {
    /// An idle instance, or one made within `wait` (see [`Pool::checkout`]); held from now on.
    pub(crate) async fn checkout(&mut self, wait: Duration) -> Result<Warm, String> {
        let w = self.pool.checkout(wait).await?;
        self.out = true;
        Ok(w)
    }

    /// Back to the pool after a call that went well.
    pub(crate) fn checkin(mut self, w: Warm) {
        self.out = false;
        self.pool.checkin(w);
    }

    /// Drop an instance that failed (see [`Pool::discard`]).
    pub(crate) fn discard(mut self, w: Warm) {
        self.out = false;
        self.pool.discard(w);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.out {
            self.pool.lost();
        }
    }
}
