//! Picking a target: round-robin or least-connections over the *available* targets (healthy and
//! not ejected), skipping those a request already tried. A [`Pick`] counts as in flight on its
//! target until it is dropped (the handler keeps it until the response body is done).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::health::{TargetState, now_ms};
use super::pool::UpstreamPool;
use crate::config::Balance;

/// A target chosen for one attempt; in flight until dropped.
#[derive(Debug)]
pub struct Pick {
    target: Arc<TargetState>,
    index: usize,
}

impl Pick {
    fn new(target: Arc<TargetState>, index: usize) -> Self {
        target.begin();
        Self { target, index }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.target.addr()
    }

    /// Position in the upstream's target list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The target's state (for recording the outcome).
    pub fn target(&self) -> &TargetState {
        &self.target
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.target.end();
    }
}

/// The target for the next attempt, or `None` when no available target is left untried.
pub fn pick(pool: &UpstreamPool, tried: &[usize]) -> Option<Pick> {
    let index = choose(pool, tried)?;
    let target = pool.shared().targets().get(index)?.clone();
    Some(Pick::new(target, index))
}

/// Is there an available target not in `tried`?
pub fn has_candidate(pool: &UpstreamPool, tried: &[usize]) -> bool {
    let now = now_ms();
    pool.shared()
        .targets()
        .iter()
        .enumerate()
        .any(|(i, t)| !tried.contains(&i) && t.available(now))
}

fn choose(pool: &UpstreamPool, tried: &[usize]) -> Option<usize> {
    let targets = pool.shared().targets();
    let len = targets.len();
    if len == 0 {
        return None;
    }
    let now = now_ms();
    // The rotating start spreads round-robin traffic and breaks least-connections ties in turn.
    let start = pool.rotation().fetch_add(1, Ordering::Relaxed) % len;
    let candidates = (0..len)
        .map(|k| (start + k) % len)
        .filter(|i| !tried.contains(i))
        .filter(|&i| targets[i].available(now));
    match pool.spec().balance {
        Balance::RoundRobin => candidates.into_iter().next(),
        Balance::LeastConnections => candidates.min_by_key(|&i| targets[i].in_flight()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;

    fn pool(balance: Balance) -> UpstreamPool {
        UpstreamPool::new(&Upstream {
            name: "u".into(),
            targets: vec!["a:1".into(), "b:2".into(), "c:3".into()],
            balance,
            ..Upstream::default()
        })
    }

    #[test]
    fn round_robin_skips_tried_targets() {
        let pool = pool(Balance::RoundRobin);
        let picks: Vec<String> = (0..3)
            .filter_map(|_| pick(&pool, &[1]).map(|p| p.addr().to_owned()))
            .collect();
        assert_eq!(picks, ["a:1", "c:3", "c:3"]);
        assert!(pick(&pool, &[0, 1, 2]).is_none());
    }

    #[test]
    fn least_connections_prefers_the_idle_target() {
        let pool = pool(Balance::LeastConnections);
        let held_a = pick(&pool, &[]);
        let held_b = pick(&pool, &[]);
        assert_eq!(held_a.as_ref().map(Pick::addr), Some("a:1"));
        assert_eq!(held_b.as_ref().map(Pick::addr), Some("b:2"));
        for _ in 0..5 {
            assert_eq!(pick(&pool, &[]).as_ref().map(Pick::addr), Some("c:3"));
        }
        drop(held_a);
        let next = pick(&pool, &[]).map(|p| p.index());
        assert!(matches!(next, Some(0 | 2)), "{next:?}");
    }
}
