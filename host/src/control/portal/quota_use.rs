//! Quota use per plan, for the dashboard's usage page. The plans and their limits come from the
//! current revision: each `[plugins.NAME.config]` with a `plans` table whose entries have
//! `requests` and `period` (the built-in `quota` plugin's shape; its module is stored by hash,
//! so the shape is what tells it apart). Each consumer's plan is the `plan` of its record in
//! this control plane, else the quota's `default_plan`. Use is what the gateways reported for
//! the current UTC period (minute, hour, day or month), refused requests included.

use std::collections::{BTreeMap, HashMap};

use maud::{Markup, html};

use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::store_usage::DAY_MS;
use crate::control::store_usage_read::{ConsumerTotal, Grain};

/// A plan as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// Requests allowed per period.
    requests: i64,
    /// `minute`, `hour`, `day` or `month`.
    period: String,
}

/// Plans of every quota in the current revision, and the default plan.
#[derive(Debug, Default, PartialEq, Eq)]
struct Quotas {
    plans: BTreeMap<String, Plan>,
    default_plan: Option<String>,
}

/// The quota plans configured in `config` (TOML text); empty when there are none.
fn quotas(config: &str) -> Quotas {
    let mut found = Quotas::default();
    let Ok(table) = config.parse::<toml::Table>() else {
        return found;
    };
    let plugins = table.get("plugins").and_then(toml::Value::as_table);
    for plugin in plugins.into_iter().flat_map(|p| p.values()) {
        let Some(config) = plugin.get("config").and_then(toml::Value::as_table) else {
            continue;
        };
        let Some(plans) = config.get("plans").and_then(toml::Value::as_table) else {
            continue;
        };
        for (name, plan) in plans {
            let requests = plan.get("requests").and_then(toml::Value::as_integer);
            let period = plan.get("period").and_then(toml::Value::as_str);
            if let (Some(requests), Some(period)) = (requests, period) {
                let plan = Plan {
                    requests,
                    period: period.to_owned(),
                };
                found.plans.insert(name.clone(), plan);
            }
        }
        if found.default_plan.is_none() {
            found.default_plan = config
                .get("default_plan")
                .and_then(toml::Value::as_str)
                .map(str::to_owned);
        }
    }
    found
}

/// The start of the UTC `period` holding `now_ms`, and the grain it is read in.
pub(super) fn period_start(period: &str, now_ms: i64) -> Option<(i64, Grain)> {
    Some(match period {
        "minute" => (now_ms - now_ms.rem_euclid(60_000), Grain::Minute),
        "hour" => (now_ms - now_ms.rem_euclid(3_600_000), Grain::Hour),
        "day" => (now_ms - now_ms.rem_euclid(DAY_MS), Grain::Day),
        "month" => {
            let t = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000).ok()?;
            let first = t.replace_day(1).ok()?.replace_time(time::Time::MIDNIGHT);
            (first.unix_timestamp() * 1000, Grain::Day)
        }
        _ => return None,
    })
}

/// One plan's row: consumers on it, requests this period, the busiest consumer's share.
struct Use {
    consumers: usize,
    requests: i64,
    busiest: Option<(String, i64)>,
    over_80: usize,
}

/// The "Quota use per plan" section.
pub async fn section(ctl: &Control, now_ms: i64) -> Result<Markup, ApiError> {
    let config = ctl.store.current().await?.and_then(|r| r.config);
    let quotas = config.as_deref().map(quotas).unwrap_or_default();
    let plan_of: HashMap<String, Option<String>> = ctl
        .store
        .consumers()
        .await?
        .into_iter()
        .map(|c| (c.name, c.plan))
        .collect();
    let mut windows: HashMap<(i64, Grain), Vec<ConsumerTotal>> = HashMap::new();
    let mut rows = Vec::new();
    for (name, plan) in &quotas.plans {
        let Some(window) = period_start(&plan.period, now_ms) else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = windows.entry(window) {
            let store = &ctl.store;
            slot.insert(store.usage_top_consumers(window.0, window.1, None).await?);
        }
        let totals = windows.get(&window).map_or(&[][..], Vec::as_slice);
        rows.push((name, plan, use_of(name, plan, totals, &plan_of, &quotas)));
    }
    Ok(html! {
        h2 { "Quota use per plan" }
        @if rows.is_empty() {
            p { "The current config has no quota plans (a plugin config with `plans` of `requests` per `period`)." }
        } @else {
            div.scroll { table #quota-use {
                caption.note { "This period's requests against each plan's limit" }
                thead { tr {
                    th scope="col" { "Plan" } th scope="col" { "Limit" } th scope="col" { "Consumers with requests" }
                    th scope="col" { "Requests this period" } th scope="col" { "Busiest consumer" }
                    th scope="col" { "Consumers over 80 %" }
                } }
                tbody { @for (name, plan, u) in &rows { tr {
                    th scope="row" { (name) }
                    td { (plan.requests) " per " (plan.period) }
                    td { (u.consumers) }
                    td { (u.requests) }
                    td { @if let Some((c, r)) = &u.busiest { (c) ": " (r) " (" (percent(*r, plan.requests)) ")" } @else { "–" } }
                    td { (u.over_80) }
                } } }
            } }
        }
        p.note { "Where these figures come from: plans and limits from the current config revision; each consumer's plan \
            from its record here (else the default plan); requests from the gateways' usage reports for the current UTC \
            period, refused (429) ones included, so use can read above 100 %." }
    })
}

fn use_of(
    name: &str,
    plan: &Plan,
    totals: &[ConsumerTotal],
    plan_of: &HashMap<String, Option<String>>,
    quotas: &Quotas,
) -> Use {
    let on_plan = |consumer: &str| {
        let chosen = match plan_of.get(consumer) {
            Some(Some(p)) if quotas.plans.contains_key(p) => Some(p.as_str()),
            Some(_) => quotas.default_plan.as_deref(),
            None => None,
        };
        chosen == Some(name)
    };
    let mine: Vec<&ConsumerTotal> = totals.iter().filter(|t| on_plan(&t.consumer)).collect();
    Use {
        consumers: mine.len(),
        requests: mine.iter().map(|t| t.requests).sum(),
        // `totals` is sorted by requests, most first.
        busiest: mine.first().map(|t| (t.consumer.clone(), t.requests)),
        over_80: mine
            .iter()
            .filter(|t| t.requests.saturating_mul(5) >= plan.requests.saturating_mul(4))
            .count(),
    }
}

fn percent(used: i64, limit: i64) -> String {
    if limit <= 0 {
        return "–".into();
    }
    format!("{} %", used.saturating_mul(100) / limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_found_by_their_shape() {
        let config = r#"
[plugins.q]
module = "modules/abc.wasm"
[plugins.q.config]
plans = { free = { requests = 100, period = "day" }, pro = { requests = 5000, period = "month" } }
default_plan = "free"
[plugins.other.config]
plans = "not a table"
"#;
        let q = quotas(config);
        assert_eq!(q.default_plan.as_deref(), Some("free"));
        assert_eq!(q.plans.len(), 2);
        assert_eq!(q.plans.get("pro").map(|p| p.requests), Some(5000));
        assert_eq!(quotas("not toml ["), Quotas::default());
    }

    #[test]
    fn periods_start_at_utc_boundaries() {
        // 2026-12-03 17:45:30 UTC
        let now = 1_796_319_930_000;
        assert_eq!(
            period_start("hour", now),
            Some((1_796_317_200_000, Grain::Hour))
        );
        assert_eq!(
            period_start("day", now),
            Some((1_796_256_000_000, Grain::Day))
        );
        assert_eq!(
            period_start("month", now),
            Some((1_796_083_200_000, Grain::Day))
        );
        assert_eq!(period_start("week", now), None);
    }
}
