//! Tollgate built-in plugin `rate-limit`: limit requests per consumer, client IP, route, header
//! or any combination, with a token bucket (default) or a sliding window; over the limit,
//! refuse with 429 or queue (throttle) the request until its reserved slot.
//!
//! ```toml
//! [plugins.per-consumer]
//! module = "rate-limit"
//! [plugins.per-consumer.config]
//! limit = 100
//! period = "1m"
//! key = ["consumer"]
//! ```
//!
//! Counting lives in the gateway's shared state (`state.take` for the token bucket,
//! `state.incr` for the sliding window), so every instance and, with Redis, every gateway sees
//! the same counts. See the README for the full config.

mod config;
mod key;
mod limiter;
mod reply;
mod sliding;

use config::{OnLimit, RawConfig, Settings};
use key::{Built, KeyPart, Source};
use limiter::{Decision, Quota, Store, Take};
use tollgate_sdk::{
    Action, Capabilities, Plugin, Request, Response, clock, context, log, metrics, state,
};

struct RateLimit {
    settings: Settings,
    /// Context key under which this plugin keeps the request's quota for the response phase.
    quota_key: String,
    /// Context key marking a request whose slot is reserved (queued): the call after the
    /// deferral lets it through without counting it again.
    queued_key: String,
}

/// The gateway's shared state.
struct HostStore;

impl Store for HostStore {
    fn take(
        &self,
        key: &str,
        capacity: u32,
        refill_per_second: f64,
        cost: u32,
        max_wait_ms: u64,
    ) -> Result<Take, String> {
        state::take(key, capacity, refill_per_second, cost, max_wait_ms).map(|t| Take {
            granted: t.granted,
            wait_ms: t.wait_ms,
            remaining: t.remaining,
            reset_ms: t.reset_ms,
        })
    }

    fn incr(&self, key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        state::incr(key, delta, ttl_ms)
    }

    fn get_counter(&self, key: &str) -> Result<i64, String> {
        state::get_counter(key)
    }
}

/// Key parts read from the request being decided; IPv6 clients counted per prefix of this
/// many bits.
struct RequestSource<'a, 'r>(&'a Request<'r>, u8);

impl Source for RequestSource<'_, '_> {
    fn value(&self, part: &KeyPart) -> Option<String> {
        match part {
            KeyPart::Consumer => context::get("consumer"),
            KeyPart::Ip => Some(key::ip_bucket(&self.0.client_ip(), self.1)),
            KeyPart::Route => Some(self.0.route()),
            KeyPart::Header(name) => self.0.header(name),
            KeyPart::Context(name) => context::get(name),
        }
    }
}

/// A short, stable name for one config, so two rate-limit entries in one chain keep their
/// context keys apart (FNV-1a over the validated settings; not a security boundary).
fn config_id(settings: &Settings) -> String {
    let text = format!("{settings:?}");
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn count(result: &str) {
    metrics::counter_add("requests_total", &[("result", result)], 1);
}

impl RateLimit {
    fn keep_quota(&self, quota: &Quota, now_ms: u64) {
        if self.settings.headers {
            context::set(&self.quota_key, &reply::stash(quota, now_ms));
        }
    }

    fn over_limit(&self, quota: &Quota, retry_after_ms: u64, key: &str) -> Action {
        count("limited");
        log::debug(&format!(
            "rate-limit: {key} over {}; retry in {retry_after_ms} ms",
            reply::describe(&self.settings)
        ));
        reply::refuse(
            &self.settings,
            429,
            "rate_limited",
            &format!("rate limit exceeded: {}", reply::describe(&self.settings)),
            quota,
            retry_after_ms,
        )
    }
}

impl Plugin for RateLimit {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        let settings = config::validate(config)?;
        let id = config_id(&settings);
        Ok(RateLimit {
            settings,
            quota_key: format!("rate-limit:{id}"),
            queued_key: format!("rate-limit:{id}:queued"),
        })
    }

    fn capabilities(&self) -> Capabilities {
        let caps = Capabilities::none().request();
        if self.settings.headers {
            caps.response()
        } else {
            caps
        }
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        // The call after a deferral: the slot was reserved on the first call. Only a queueing
        // config defers, so only it looks (one import less per request for the others).
        if matches!(self.settings.on_limit, OnLimit::Queue { .. })
            && context::get(&self.queued_key).is_some()
        {
            context::remove(&self.queued_key);
            return Action::Continue;
        }

        let key = match key::build(
            &self.settings.key,
            self.settings.missing,
            &RequestSource(req, self.settings.ipv6_prefix),
        ) {
            Built::Key(key) => key,
            Built::Skip => {
                count("skipped");
                return Action::Continue;
            }
            Built::Deny(part) => {
                count("key_missing");
                return Action::json(
                    403,
                    &serde_json::json!({
                        "error": "rate_limit_key_missing",
                        "message": format!("request has no {part} to count the rate limit by"),
                    }),
                );
            }
        };

        let now_ms = clock::now_millis();
        let decision = match limiter::decide(&self.settings, &HostStore, &key, now_ms) {
            Ok(decision) => decision,
            Err(e) => {
                // Let the request through: the gateway's `on_state_error` for this entry then
                // decides (`fail-closed`, the default, answers 503 `state_unavailable`;
                // `fail-open` keeps serving without limits while the backend is down).
                count("state_error");
                log::error(&format!("rate-limit: shared state failed for {key}: {e}"));
                return Action::Continue;
            }
        };

        match decision {
            Decision::Allow(quota) => {
                count("allowed");
                self.keep_quota(&quota, now_ms);
                Action::Continue
            }
            Decision::Wait { quota, wait_ms } => {
                count("queued");
                self.keep_quota(&quota, now_ms);
                context::set(&self.queued_key, "1");
                metrics::histogram_record("queue_wait_ms", &[], wait_ms as f64);
                Action::defer(u32::try_from(wait_ms).unwrap_or(u32::MAX))
            }
            Decision::Limited {
                quota,
                retry_after_ms,
            } => self.over_limit(&quota, retry_after_ms, &key),
            Decision::QueueFull {
                quota,
                retry_after_ms,
            } => {
                count("queue_full");
                let max_queue = match self.settings.on_limit {
                    OnLimit::Queue {
                        max_queue: Some(q), ..
                    } => q,
                    _ => 0,
                };
                reply::refuse(
                    &self.settings,
                    503,
                    "queue_full",
                    &format!("{max_queue} requests are already waiting for this rate limit"),
                    &quota,
                    retry_after_ms,
                )
            }
        }
    }

    /// Put this request's quota on the response, unless a header already there (from another
    /// rate-limit entry, or the upstream) reports fewer requests remaining: the most
    /// restrictive limit is the one a client must follow.
    fn on_response(&self, _req: &Request<'_>, resp: &Response<'_>) -> Action {
        let Some(quota) = context::get(&self.quota_key)
            .and_then(|text| reply::unstash(&text, clock::now_millis()))
        else {
            return Action::Continue;
        };
        let existing = resp
            .header("ratelimit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if existing.is_some_and(|remaining| remaining <= quota.remaining) {
            return Action::Continue;
        }
        if existing.is_some() {
            // Do not mix another limit's fields with ours.
            resp.remove_header("ratelimit-policy");
        }
        for (name, value) in reply::quota_headers(&self.settings, &quota) {
            if let Err(e) = resp.set_header(name, &value) {
                log::warn(&format!("rate-limit: cannot set {name}: {e}"));
            }
        }
        Action::Continue
    }
}

tollgate_sdk::export_plugin!(RateLimit);
