//! Sending a request upstream with retries: only for the upstream's retry methods (idempotent
//! ones by default), only when the attempt never reached a target (connect refused, reset or
//! timed out while connecting — never after the request was written), only with a body that can
//! be sent again, each time to an available target not tried yet, and only within the retry
//! budget, so retries cannot multiply the load on an upstream that is failing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Method, Request, Response};
use hyper::body::Incoming;

use super::balance::{self, Pick};
use super::client::{self, ProxyClient};
use super::health::now_ms;
use super::pool::UpstreamPool;
use crate::proxy::body::ProxyBody;
use crate::proxy::error::ProxyError;

/// The window the budget looks back over, in one-second buckets.
const WINDOW_SECS: usize = 10;

/// Retries allowed: `budget_min_per_sec × 10 + budget_percent % of the requests` over the last
/// 10 seconds. Counts survive reloads with the upstream.
#[derive(Debug, Default)]
pub struct RetryBudget {
    window: Mutex<[Bucket; WINDOW_SECS]>,
    retried: AtomicU64,
    exhausted: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    second: u64,
    requests: u64,
    retries: u64,
}

impl RetryBudget {
    fn bucket(window: &mut [Bucket; WINDOW_SECS], second: u64) -> &mut Bucket {
        let slot = &mut window[(second % WINDOW_SECS as u64) as usize];
        if slot.second != second {
            *slot = Bucket {
                second,
                requests: 0,
                retries: 0,
            };
        }
        slot
    }

    /// Count a request (first attempts only).
    pub fn record_request(&self) {
        let second = now_ms() / 1000;
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        Self::bucket(&mut window, second).requests += 1;
    }

    /// Take one retry from the budget, if there is one left.
    pub fn try_retry(&self, percent: u32, min_per_sec: u32) -> bool {
        let second = now_ms() / 1000;
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = second.saturating_sub(WINDOW_SECS as u64 - 1);
        let (requests, retries) = window
            .iter()
            .filter(|b| b.second >= oldest && b.second <= second)
            .fold((0, 0), |(rq, rt), b| (rq + b.requests, rt + b.retries));
        let allowed =
            u64::from(min_per_sec) * WINDOW_SECS as u64 + requests * u64::from(percent) / 100;
        if retries < allowed {
            Self::bucket(&mut window, second).retries += 1;
            self.retried.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Retries made since the upstream was first loaded.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// Retries refused by the budget since the upstream was first loaded.
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }
}

/// A response from a target, and the pick that stays in flight until the body is done.
pub struct Forwarded {
    /// The upstream's response head and body.
    pub response: Response<Incoming>,
    /// The target that answered.
    pub pick: Pick,
}

/// What `forward` tells its caller about each attempt, for the access log and traces.
#[derive(Debug)]
pub enum Attempt<'a> {
    /// An attempt to this target starts.
    Start(&'a str),
    /// The attempt ended: with the response status, or `None` when it failed.
    End(Option<http::StatusCode>),
}

/// What a failed request tells about a target.
fn counts_against_target(error: &ProxyError) -> bool {
    matches!(
        error,
        ProxyError::UpstreamConnect { .. }
            | ProxyError::UpstreamTimeout { .. }
            | ProxyError::Upstream { .. }
    )
}

/// Whether a request with `method` may be retried at all: the upstream's policy allows it, and
/// there is another target to retry on (a retry never goes back to a target it tried). When not,
/// nothing is kept for a second attempt: neither the body nor a copy of the headers.
pub fn may_retry(pool: &UpstreamPool, method: &Method) -> bool {
    let spec = pool.spec();
    let policy = &spec.retry;
    policy.retries > 0 && spec.targets.len() > 1 && policy.methods.contains(method)
}

/// Send a request to `pool`, retrying as the upstream's policy allows. `build` makes the request
/// for a target; `replayable` says whether a later attempt can carry the same body whole; `client_fault` says whether a failure
/// was the client's (its body broke the limit), which is neither retried nor held against the
/// target. `on_attempt` hears each attempt start and end. The last error is returned when every
/// attempt failed.
pub async fn forward<F>(
    pool: &UpstreamPool,
    client: &ProxyClient,
    method: &Method,
    replayable: &(dyn Fn() -> bool + Sync),
    client_fault: &(dyn Fn() -> bool + Sync),
    mut build: F,
    mut on_attempt: impl FnMut(Attempt<'_>),
) -> Result<Forwarded, ProxyError>
where
    F: FnMut(&str) -> Result<Request<ProxyBody>, ProxyError>,
{
    let state = pool.shared();
    let spec = pool.spec();
    state.budget().record_request();
    let policy = &spec.retry;
    let may_retry = may_retry(pool, method);
    let mut tried: Vec<usize> = Vec::new();
    loop {
        let Some(pick) = balance::pick(pool, &tried) else {
            return Err(ProxyError::NoHealthyUpstream {
                upstream: pool.name().to_owned(),
            });
        };
        on_attempt(Attempt::Start(pick.addr()));
        let req = build(pick.addr())?;
        let sent = client::send(client, pool, pick.addr(), req).await;
        on_attempt(Attempt::End(sent.as_ref().ok().map(Response::status)));
        match sent {
            Ok(response) => {
                let failed = spec.passive.eject_on_5xx && response.status().is_server_error();
                if failed {
                    pick.target().record_failure(pool.name(), &spec.passive);
                } else {
                    pick.target().record_success();
                }
                return Ok(Forwarded { response, pick });
            }
            Err(error) => {
                if client_fault() {
                    return Err(error);
                }
                if counts_against_target(&error) {
                    pick.target().record_failure(pool.name(), &spec.passive);
                }
                let never_sent = matches!(error, ProxyError::UpstreamConnect { .. });
                tried.push(pick.index());
                drop(pick);
                let attempts_left = tried.len() <= policy.retries as usize;
                let retry = may_retry && never_sent && attempts_left && replayable();
                if !(retry && balance::has_candidate(pool, &tried)) {
                    return Err(error);
                }
                if !state
                    .budget()
                    .try_retry(policy.budget_percent, policy.budget_min_per_sec)
                {
                    metrics::counter!(
                        "tollgate_upstream_retry_budget_exhausted_total",
                        "upstream" => pool.name().to_owned(),
                    )
                    .increment(1);
                    tracing::debug!(upstream = pool.name(), "retry budget exhausted");
                    return Err(error);
                }
                metrics::counter!(
                    "tollgate_upstream_retries_total",
                    "upstream" => pool.name().to_owned(),
                )
                .increment(1);
                tracing::debug!(upstream = pool.name(), %error, "retrying on another target");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;

    #[test]
    fn a_retry_needs_a_method_the_policy_allows_and_another_target() {
        let upstream = |targets: &[&str]| {
            UpstreamPool::new(&Upstream {
                name: "u".into(),
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
                ..Upstream::default()
            })
        };
        let two = upstream(&["a:1", "b:2"]);
        assert!(may_retry(&two, &Method::GET));
        assert!(!may_retry(&two, &Method::POST));
        // One target: a retry could only go back to the target that failed, which it never does.
        assert!(!may_retry(&upstream(&["a:1"]), &Method::GET));
    }

    #[test]
    fn budget_allows_the_minimum_plus_a_share_of_requests() {
        let budget = RetryBudget::default();
        for _ in 0..50 {
            budget.record_request();
        }
        // 0 per second minimum, 20 % of 50 requests.
        let granted = (0..50).filter(|_| budget.try_retry(20, 0)).count();
        assert_eq!(granted, 10);
        assert_eq!(budget.exhausted(), 40);

        let quiet = RetryBudget::default();
        let granted = (0..50).filter(|_| quiet.try_retry(20, 1)).count();
        assert_eq!(granted, WINDOW_SECS);
    }
}
