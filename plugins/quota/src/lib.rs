//! Tollgate built-in plugin `quota`: so many requests per consumer per UTC calendar period
//! (minute, hour, day or month), by plan. The consumer and its plan come from the `consumer` and
//! `plan` context keys that an auth plugin earlier in the chain sets.
//!
//! ```toml
//! [plugins.quota]
//! module = "quota"
//! [plugins.quota.config]
//! plans = { free = { requests = 1000, period = "day" }, pro = { requests = 1000000, period = "month" } }
//! default_plan = "free"
//! ```
//!
//! Admitted requests get `X-Quota-Limit`, `X-Quota-Remaining` and `X-Quota-Reset` on their
//! response; refused ones `429 {"error":"quota_exceeded","plan","limit","reset"}` with
//! `Retry-After`. Counts live in the gateway's shared state under
//! `<consumer>:<period>:<period start>`, so they hold across instances, hot swaps and (with
//! Redis) gateways. See the README.

mod calendar;
mod config;
mod keys;

use calendar::rfc3339;
use config::{Plan, PlanChoice, Quotas, RawConfig};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, clock, context, log, metrics};

struct Quota(Quotas);

fn refuse(status: u16, body: serde_json::Value) -> Action {
    Action::json(status, &body)
}

impl Quota {
    /// Count one request against `plan` for `consumer`; refuse it when over quota.
    fn count(&self, consumer: &str, plan: &Plan) -> Action {
        let now = clock::now_millis();
        let window = plan.period.window(now);
        let key = keys::counter(consumer, window.period.name(), &window.label());
        // The counter lives until its period ends: the next period uses another key.
        let ttl = window.end_ms.saturating_sub(now).max(1);
        let reset = rfc3339(window.end_ms);
        let used = match tollgate_sdk::state::incr(&key, 1, ttl) {
            Ok(n) => n,
            Err(e) => return self.state_failed(&e),
        };
        let limit = plan.requests;
        if u64::try_from(used).is_ok_and(|used| used > limit) {
            // Count the refused request back out, so the counter says how many were admitted
            // (an upgrade mid-period then starts from what was really used). Admission stays
            // exact without this: each increment's own result decides.
            if let Err(e) = tollgate_sdk::state::incr(&key, -1, ttl) {
                log::warn(&format!("quota: uncounting a refused request: {e}"));
            }
            metrics::counter_add("quota_rejections", &[("plan", plan.name.as_str())], 1);
            let retry_after = window.end_ms.saturating_sub(now).div_ceil(1000).max(1);
            return refuse(
                429,
                serde_json::json!({
                    "error": "quota_exceeded",
                    "plan": plan.name,
                    "limit": limit,
                    "reset": reset,
                }),
            )
            .header("retry-after", retry_after.to_string())
            .header("x-quota-limit", limit.to_string())
            .header("x-quota-remaining", "0")
            .header("x-quota-reset", reset);
        }
        let remaining = limit.saturating_sub(u64::try_from(used).unwrap_or(0));
        // Put on the response by the gateway (context keys `response.header.<name>`), so this
        // plugin needs no response phase: one call per request.
        context::set_response_header("x-quota-limit", &limit.to_string());
        context::set_response_header("x-quota-remaining", &remaining.to_string());
        context::set_response_header("x-quota-reset", &reset);
        Action::Continue
    }

    /// The state backend failed: admit the request uncounted. The host's `on_state_error`
    /// policy for this plugin entry decides whether that stands (`fail-open`) or the request
    /// gets 503 `state_unavailable` (`fail-closed`, the default).
    fn state_failed(&self, error: &str) -> Action {
        log::warn(&format!(
            "quota: state backend failed, request not counted: {error}"
        ));
        metrics::counter_add("quota_state_errors", &[], 1);
        Action::Continue
    }
}

impl Plugin for Quota {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(Quota)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request()
    }

    fn on_request(&self, _req: &Request<'_>) -> Action {
        let Some(consumer) = context::get("consumer") else {
            return if self.0.allow_anonymous {
                Action::Continue
            } else {
                refuse(
                    403,
                    serde_json::json!({
                        "error": "quota_no_consumer",
                        "message": "this route's quota needs an identified consumer",
                    }),
                )
            };
        };
        let plan = context::get("plan");
        match self.0.choose(plan.as_deref()) {
            PlanChoice::Plan(plan) => self.count(&consumer, plan),
            PlanChoice::Unknown(name) => refuse(
                403,
                serde_json::json!({
                    "error": "unknown_plan",
                    "plan": name,
                    "message": "the consumer's plan has no quota here",
                }),
            ),
            PlanChoice::Missing => refuse(
                403,
                serde_json::json!({
                    "error": "no_plan",
                    "message": "the consumer has no plan and there is no default plan",
                }),
            ),
        }
    }
}

tollgate_sdk::export_plugin!(Quota);
