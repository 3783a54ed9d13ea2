//! Tollgate built-in plugin `rbac`: allow or deny each request by who makes it (the `consumer`
//! and `roles` context keys set by an auth plugin earlier in the chain), its method and its
//! normalised path. Deny rules win over allow rules; anything no rule allows is refused.
//!
//! ```toml
//! [plugins.rbac]
//! module = "rbac"
//! [[plugins.rbac.config.rules]]
//! roles = ["admin"]
//! methods = ["*"]
//! paths = ["/admin/**"]
//! effect = "allow"
//! ```
//!
//! Refusals are `403 {"error":"forbidden","message":"not allowed"}`; the reason (which rule)
//! goes to the gateway log only. See the README for the full config.

mod config;
mod method_override;
mod pattern;
mod policy;

use config::RawConfig;
use policy::{Denial, Identity, Policy};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, context, log, metrics};

struct Rbac(Policy);

fn forbidden() -> Action {
    Action::json(
        403,
        &serde_json::json!({ "error": "forbidden", "message": "not allowed" }),
    )
}

fn bad_request(message: &str) -> Action {
    Action::json(
        400,
        &serde_json::json!({ "error": "bad_request", "message": message }),
    )
}

impl Rbac {
    /// Every override value on the request: the override headers, then `_method`.
    fn override_values(req: &Request<'_>) -> Vec<String> {
        let mut values: Vec<String> = method_override::HEADERS
            .iter()
            .flat_map(|h| req.header_all(h))
            .collect();
        if let Some(query) = req.query() {
            values.extend(method_override::query_values(&query));
        }
        values
    }

    /// Make the request the upstream gets carry exactly the method that was decided on: drop the
    /// override headers and `_method`, and apply an honoured override as the real method.
    fn settle_method(req: &Request<'_>, real: &str, decided: &str) -> Result<(), String> {
        for header in method_override::HEADERS {
            req.remove_header(header);
        }
        if let Some(query) = req.query()
            && let Some(stripped) = method_override::strip_query(&query)
        {
            req.set_query(stripped.as_deref());
        }
        if !real.eq_ignore_ascii_case(decided) {
            req.set_method(decided)?;
        }
        Ok(())
    }
}

impl Plugin for Rbac {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(Rbac)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request()
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        let real = req.method();
        let overrides = Self::override_values(req);
        let method = match method_override::resolve(&real, self.0.allow_method_override, &overrides)
        {
            Ok(method) => method,
            Err(message) => return bad_request(&message),
        };
        let who = Identity::from_context(context::get("consumer"), context::get("roles"));
        let path = req.path();

        match self.0.decide(&who, &method, &path) {
            Ok(()) => {
                if !overrides.is_empty()
                    && let Err(e) = Self::settle_method(req, &real, &method)
                {
                    log::warn(&format!("rbac: cannot apply method override {method}: {e}"));
                    return bad_request("invalid method override");
                }
                Action::Continue
            }
            Err(denial) => {
                let reason = match denial {
                    Denial::DenyRule(_) => "deny_rule",
                    Denial::NoAllowRule => "no_allow_rule",
                    Denial::DotSegment => "dot_segment",
                };
                metrics::counter_add("denied_total", &[("reason", reason)], 1);
                log::info(&format!(
                    "rbac: denied {method} {path} for {}: {denial}",
                    who.consumer.as_deref().unwrap_or("<anonymous>")
                ));
                forbidden()
            }
        }
    }
}

tollgate_sdk::export_plugin!(Rbac);
