//! The global cap on request-body bytes buffered for plugins (`[limits] max_buffered_bytes`).
//!
//! `max_body_bytes` bounds one request; this bounds them all together, so 200 streams of one
//! h2 connection cannot each pin a full body. A request charges its [`BufferCharge`] while its
//! body is collected and gives the bytes back when the request ends (the charge is dropped with
//! the request's trace, after the response). A frame that would pass the budget fails the
//! request at once with 503 `buffer_budget_exhausted`, counted in
//! `tollgate_buffer_budget_refusals_total`. Streamed bodies (no plugin asked for them) are not
//! charged: hyper's flow-control windows bound them.
//!
//! The budget belongs to the proxy, not to one routing table: a reload carries it over (with
//! the new limit), so requests in flight on the old table still count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes buffered across all requests, against a limit.
#[derive(Debug)]
pub struct BufferBudget {
    limit: AtomicU64,
    used: AtomicU64,
}

impl BufferBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit: AtomicU64::new(limit),
            used: AtomicU64::new(0),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Change the limit (a reload); bytes already held stay held.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Bytes held right now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// A new, empty charge for one request.
    pub fn charge(self: &Arc<Self>) -> BufferCharge {
        BufferCharge(Arc::new(ChargeInner {
            budget: self.clone(),
            held: AtomicU64::new(0),
        }))
    }

    fn try_take(&self, n: u64) -> bool {
        let limit = self.limit();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= limit)
            })
            .is_ok()
    }
}

/// One request's share of the [`BufferBudget`]; cloned freely, given back when the last clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct BufferCharge(Arc<ChargeInner>);

#[derive(Debug)]
struct ChargeInner {
    budget: Arc<BufferBudget>,
    held: AtomicU64,
}

impl BufferCharge {
    /// Take `n` more bytes; `false` (nothing taken) when that would pass the limit.
    pub fn take(&self, n: u64) -> bool {
        if !self.0.budget.try_take(n) {
            metrics::counter!("tollgate_buffer_budget_refusals_total").increment(1);
            return false;
        }
        self.0.held.fetch_add(n, Ordering::Relaxed);
        true
    }

    /// Bytes this request holds.
    pub fn held(&self) -> u64 {
        self.0.held.load(Ordering::Relaxed)
    }
}

impl Drop for ChargeInner {
    fn drop(&mut self) {
        let held = *self.held.get_mut();
        self.budget.used.fetch_sub(held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_bounded_and_given_back() {
        let budget = BufferBudget::new(100);
        let a = budget.charge();
        let b = budget.charge();
        assert!(a.take(60));
        assert!(!b.take(41), "would pass the limit");
        assert!(b.take(40));
        assert_eq!(budget.used(), 100);
        let a2 = a.clone();
        drop(a);
        assert_eq!(budget.used(), 100, "a clone still holds the bytes");
        drop(a2);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_lower_limit_applies_to_new_bytes_only() {
        let budget = BufferBudget::new(100);
        let a = budget.charge();
        assert!(a.take(80));
        budget.set_limit(50);
        assert!(!a.take(1));
        assert_eq!(a.held(), 80);
    }
}
