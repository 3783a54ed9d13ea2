//! A developer's plan: the plans on offer are those of the current revision's quota plugins
//! (every plugin entry whose `config.plans` is a table of `{ requests, period }`, as the
//! built-in `quota` plugin takes), so a developer can pick only a plan the gateways enforce.
//! Choosing one updates the developer's consumer (audited); gateways take it with the key
//! table within 2 s. The page shows each plan's limits and, for the developer's plan, the
//! requests used and left this period as the gateways' usage reports count them (every 5 s;
//! the gateways' own count, in their shared state, is in each response's `X-Quota-Remaining`).

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::page::csrf;
use super::session::Session;
use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::store::now_ms;

/// One plan's limit in one quota plugin entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The plugin entry (`[plugins.NAME]`).
    pub entry: String,
    /// Requests allowed per period.
    pub requests: i64,
    /// `minute`, `hour`, `day` or `month`.
    pub period: String,
}

/// Plans offered by a config, by name, and the default plan of each entry that names one.
pub fn offered(config: &str) -> (BTreeMap<String, Vec<Limit>>, Vec<String>) {
    let mut plans: BTreeMap<String, Vec<Limit>> = BTreeMap::new();
    let mut defaults = Vec::new();
    let Ok(doc) = config.parse::<toml::Table>() else {
        return (plans, defaults);
    };
    let entries = doc.get("plugins").and_then(toml::Value::as_table);
    for (entry, spec) in entries.into_iter().flatten() {
        let config = spec.get("config");
        let Some(table) = config
            .and_then(|c| c.get("plans"))
            .and_then(toml::Value::as_table)
        else {
            continue;
        };
        for (name, plan) in table {
            let requests = plan.get("requests").and_then(toml::Value::as_integer);
            let period = plan.get("period").and_then(toml::Value::as_str);
            if let (Some(requests), Some(period)) = (requests, period) {
                plans.entry(name.clone()).or_default().push(Limit {
                    entry: entry.clone(),
                    requests,
                    period: period.to_owned(),
                });
            }
        }
        if let Some(d) = config
            .and_then(|c| c.get("default_plan"))
            .and_then(toml::Value::as_str)
        {
            defaults.push(d.to_owned());
        }
    }
    (plans, defaults)
}

async fn current_offer(
    ctl: &Control,
) -> Result<(BTreeMap<String, Vec<Limit>>, Vec<String>), ApiError> {
    let config = ctl.store.current().await?.and_then(|r| r.config);
    Ok(config.as_deref().map(offered).unwrap_or_default())
}

/// The plan page's body for the developer's consumer `name`.
pub async fn page(ctl: &Control, s: &Session, name: &str) -> Result<Markup, ApiError> {
    let (plans, defaults) = current_offer(ctl).await?;
    let mine = ctl.store.consumer(name).await?.and_then(|c| c.plan);
    let counted = mine.clone().or_else(|| defaults.first().cloned());
    let limits = counted.as_ref().and_then(|p| plans.get(p));
    let left = match limits {
        Some(limits) => quota_left(ctl, name, limits).await?,
        None => Vec::new(),
    };
    Ok(html! {
        p { "Your plan: " strong #current-plan { @if let Some(p) = &mine { (p) } @else { "none" } }
            @if mine.is_none() && !defaults.is_empty() { " (the gateways count you on the default plan, " (defaults.join(", ")) ")" } }
        @if !left.is_empty() {
            div.scroll { table #quota-left {
                caption.note { "This period's requests on your plan" }
                thead { tr { th scope="col" { "Limit" } th scope="col" { "Used" } th scope="col" { "Left" } } }
                tbody { @for (limit, used) in &left { tr {
                    th scope="row" { (limit.requests) " per " (limit.period) }
                    td.used { (used) }
                    td.left { ((limit.requests - used).max(0)) }
                } } }
            } }
            p.note { "Counted from the gateways' usage reports for the current UTC period (up to a few \
                seconds behind; refused requests count too)." }
        }
        @if plans.is_empty() {
            p { "No plans are offered: the current config has no quota plugin with plans." }
        } @else {
            form method="post" action="/portal/plan" {
                (csrf(s))
                fieldset {
                    legend { "Plans offered" }
                    @for (plan, limits) in &plans {
                        label.choice {
                            input type="radio" name="plan" value=(plan) checked[mine.as_deref() == Some(plan.as_str())];
                            " " strong { (plan) } " — " (limits_text(limits))
                        }
                    }
                }
                p { button type="submit" { "Use this plan" } }
            }
            p.note { "Limits count requests per UTC calendar period. The gateways' own count is in each "
                "response's " code { "X-Quota-Remaining" } " and " code { "X-Quota-Reset" } "." }
        }
    })
}

/// Each limit with the requests consumer `name` made in its current period.
async fn quota_left<'l>(
    ctl: &Control,
    name: &str,
    limits: &'l [Limit],
) -> Result<Vec<(&'l Limit, i64)>, ApiError> {
    let now = now_ms();
    let mut out = Vec::new();
    for limit in limits {
        let Some((since, grain)) = super::quota_use::period_start(&limit.period, now) else {
            continue;
        };
        let totals = ctl.store.usage_top_consumers(since, grain, None).await?;
        let used = totals
            .iter()
            .find(|t| t.consumer == name)
            .map_or(0, |t| t.requests);
        out.push((limit, used));
    }
    Ok(out)
}

fn limits_text(limits: &[Limit]) -> String {
    limits
        .iter()
        .map(|l| {
            let mut t = format!("{} requests per {}", l.requests, l.period);
            if limits.len() > 1 {
                t.push_str(&format!(" ({})", l.entry));
            }
            t
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Put the developer's consumer on `plan` when it is offered; the plan chosen.
pub async fn choose(
    ctl: &Control,
    actor: &str,
    name: &str,
    plan: &str,
) -> Result<String, ApiError> {
    let (plans, _) = current_offer(ctl).await?;
    if !plans.contains_key(plan) {
        let names: Vec<&str> = plans.keys().map(String::as_str).collect();
        return Err(ApiError::BadRequest(if names.is_empty() {
            "no plans are offered".to_owned()
        } else {
            format!(
                "plan {plan:?} is not offered (offered: {})",
                names.join(", ")
            )
        }));
    }
    crate::control::ops::set_plan(ctl, actor, name, plan).await?;
    Ok(plan.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_come_from_quota_entries() {
        let config = r#"
[plugins.quota]
module = "quota"
[plugins.quota.config]
plans = { free = { requests = 1000, period = "day" }, pro = { requests = 100000, period = "month" } }
default_plan = "free"
[plugins.auth]
module = "auth"
"#;
        let (plans, defaults) = offered(config);
        assert_eq!(plans.keys().collect::<Vec<_>>(), ["free", "pro"]);
        assert_eq!(plans["free"][0].requests, 1000);
        assert_eq!(defaults, ["free"]);
    }
}
