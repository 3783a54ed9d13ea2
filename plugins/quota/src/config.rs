//! The `quota` config as written in `gateway.toml` (raw serde types), validated into a
//! [`Quotas`]. Every problem is collected with its config path before failing.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::calendar::Period;

/// The `[plugins.NAME.config]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    plans: BTreeMap<String, RawPlan>,
    default_plan: Option<String>,
    unknown_plan: Option<String>,
    anonymous: Option<String>,
}

/// One `plans.NAME` entry. Both keys are required; `Option`s so a missing one is reported with
/// the plan's name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    requests: Option<u64>,
    period: Option<String>,
}

/// A plan: so many requests per period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The plan's name (from the consumer's `plan` context value).
    pub name: String,
    /// Requests allowed per period (0 refuses every request).
    pub requests: u64,
    /// The counting period.
    pub period: Period,
}

/// What to do with a `plan` context value that names no configured plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownPlan {
    /// Refuse with 403 `unknown_plan`.
    Deny,
    /// Count against `default_plan`.
    Default,
}

/// The validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    /// Plans by name.
    pub plans: BTreeMap<String, Plan>,
    /// The plan for consumers without a `plan` context value (and, with
    /// [`UnknownPlan::Default`], for unknown plans).
    pub default_plan: Option<String>,
    /// Unknown plan names.
    pub unknown_plan: UnknownPlan,
    /// Let requests without a `consumer` through uncounted (`true`) or refuse them (`false`).
    pub allow_anonymous: bool,
}

/// Plan names appear in JSON bodies and headers: keep them to printable, spaceless ASCII.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic())
}

/// A two-way choice spelled as a string; `None` picks `default`.
fn choice(
    at: &str,
    value: Option<&str>,
    options: [&str; 2],
    default: bool,
    errors: &mut Vec<String>,
) -> bool {
    match value {
        None => default,
        Some(v) if v == options[0] => true,
        Some(v) if v == options[1] => false,
        Some(v) => {
            errors.push(format!(
                "{at}: {v:?} is not {:?} or {:?}",
                options[0], options[1]
            ));
            default
        }
    }
}

/// Validate a parsed config.
pub fn validate(raw: RawConfig) -> Result<Quotas, String> {
    let mut errors = Vec::new();
    if raw.plans.is_empty() {
        errors.push("plans: missing or empty; give at least one plan".to_owned());
    }
    if let Some(default) = &raw.default_plan
        && !raw.plans.contains_key(default)
    {
        errors.push(format!("default_plan: {default:?} is not one of the plans"));
    }
    let mut plans = BTreeMap::new();
    for (name, plan) in raw.plans {
        let at = format!("plans.{name}");
        if !valid_name(&name) {
            errors.push(format!(
                "{at}: plan names are 1 to 64 printable ASCII characters without spaces"
            ));
        }
        let requests = plan.requests.or_else(|| {
            errors.push(format!("{at}.requests: missing (requests per period)"));
            None
        });
        let period = match plan.period.as_deref() {
            None => {
                errors.push(format!(
                    "{at}.period: missing (\"minute\", \"hour\", \"day\" or \"month\")"
                ));
                None
            }
            Some(p) => Period::parse(p).or_else(|| {
                errors.push(format!(
                    "{at}.period: {p:?} is not \"minute\", \"hour\", \"day\" or \"month\""
                ));
                None
            }),
        };
        if let (Some(requests), Some(period)) = (requests, period) {
            plans.insert(
                name.clone(),
                Plan {
                    name,
                    requests,
                    period,
                },
            );
        }
    }
    let unknown_plan = match raw.unknown_plan.as_deref() {
        None | Some("deny") => UnknownPlan::Deny,
        Some("default") => {
            if raw.default_plan.is_none() {
                errors.push("unknown_plan: \"default\" needs `default_plan`".to_owned());
            }
            UnknownPlan::Default
        }
        Some(other) => {
            errors.push(format!(
                "unknown_plan: {other:?} is not \"deny\" or \"default\""
            ));
            UnknownPlan::Deny
        }
    };
    let allow_anonymous = choice(
        "anonymous",
        raw.anonymous.as_deref(),
        ["allow", "deny"],
        false,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Quotas {
        plans,
        default_plan: raw.default_plan,
        unknown_plan,
        allow_anonymous,
    })
}

/// Which plan a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanChoice<'a> {
    /// This plan.
    Plan(&'a Plan),
    /// The `plan` context value names no plan (and `unknown_plan = "deny"`).
    Unknown(String),
    /// No `plan` context value and no `default_plan`.
    Missing,
}

impl Quotas {
    /// The plan for a request whose `plan` context value is `plan`.
    pub fn choose(&self, plan: Option<&str>) -> PlanChoice<'_> {
        let default = || self.default_plan.as_deref().and_then(|d| self.plans.get(d));
        match plan {
            Some(name) => match (self.plans.get(name), self.unknown_plan) {
                (Some(p), _) => PlanChoice::Plan(p),
                (None, UnknownPlan::Default) => {
                    default().map_or(PlanChoice::Missing, PlanChoice::Plan)
                }
                (None, UnknownPlan::Deny) => PlanChoice::Unknown(name.to_owned()),
            },
            None => default().map_or(PlanChoice::Missing, PlanChoice::Plan),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Quotas, String> {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string())?;
        validate(raw)
    }

    #[test]
    fn full_config_and_plan_choice() {
        let q = parse(serde_json::json!({
            "plans": {
                "free": { "requests": 1000, "period": "day" },
                "pro": { "requests": 100000, "period": "month" },
            },
            "default_plan": "free",
            "unknown_plan": "default",
            "anonymous": "allow",
        }))
        .expect("valid");
        assert!(q.allow_anonymous);
        let pro = &q.plans["pro"];
        assert_eq!((pro.requests, pro.period), (100_000, Period::Month));
        assert_eq!(q.choose(Some("pro")), PlanChoice::Plan(pro));
        assert_eq!(q.choose(Some("gold")), PlanChoice::Plan(&q.plans["free"]));
        assert_eq!(q.choose(None), PlanChoice::Plan(&q.plans["free"]));
    }

    #[test]
    fn defaults_are_strict() {
        let q = parse(serde_json::json!({
            "plans": { "free": { "requests": 5, "period": "minute" } },
        }))
        .expect("valid");
        assert!(!q.allow_anonymous);
        assert_eq!(q.unknown_plan, UnknownPlan::Deny);
        assert_eq!(q.choose(Some("gold")), PlanChoice::Unknown("gold".into()));
        assert_eq!(q.choose(None), PlanChoice::Missing);
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let err = parse(serde_json::json!({
            "plans": {
                "free": { "period": "week" },
                "with space": { "requests": 1 },
            },
            "unknown_plan": "default",
            "anonymous": "maybe",
        }))
        .expect_err("must fail");
        for needle in [
            "plans.free.requests: missing",
            "plans.free.period: \"week\" is not",
            "plans.with space: plan names are",
            "plans.with space.period: missing",
            "unknown_plan: \"default\" needs `default_plan`",
            "anonymous: \"maybe\" is not \"allow\" or \"deny\"",
        ] {
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
        let err = parse(serde_json::json!({})).expect_err("must fail");
        assert!(err.contains("plans: missing or empty"), "{err}");
        let err = parse(serde_json::json!({
            "plans": { "free": { "requests": 1, "period": "day" } },
            "default_plan": "gold",
        }))
        .expect_err("must fail");
        assert!(err.contains("default_plan: \"gold\" is not one of the plans"));
        let err = parse(serde_json::json!({ "plans": {}, "limit": 3 })).expect_err("must fail");
        assert!(err.contains("unknown field `limit`"), "{err}");
    }
}
