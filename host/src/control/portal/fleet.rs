//! The dashboard's fleet page: each gateway's last report (`POST /v1/node/status`, sent on
//! every change and every quiet watch): the revision it serves against the newest, health, when
//! it last reported, and its counters; and its requests/s and error rate over the last one to
//! two minutes, from its usage reports (`POST /v1/node/usage`, every 5 s).

use maud::{Markup, html};

use super::page::when;
use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::store::now_ms;

/// A gateway silent for longer is shown as stale.
const STALE_MS: i64 = 90_000;

/// The fleet page's body.
pub async fn page(ctl: &Control) -> Result<Markup, ApiError> {
    let newest = ctl.store.current().await?.map(|r| r.id);
    let gateways = ctl.store.gateways().await?;
    let now = now_ms();
    // The previous minute and this one: a window of 60 to 120 s.
    let since = now - now.rem_euclid(60_000) - 60_000;
    let rates = ctl.store.usage_nodes_since(since).await?;
    let seconds = (now - since).max(1_000) / 1_000;
    Ok(html! {
        p { "Newest config revision: " strong { @if let Some(n) = newest { (n) } @else { "none yet" } } ". "
            a href="/dashboard/revisions" { "See the revisions" } }
        @if gateways.is_empty() { p { "No gateway has reported yet." } } @else {
            div.scroll { table #fleet {
                caption.note { "Each gateway's last report" }
                thead { tr {
                    th scope="col" { "Gateway" } th scope="col" { "Revision" } th scope="col" { "Health" }
                    th scope="col" { "Last report" } th scope="col" { "Requests/s" } th scope="col" { "Error rate (5xx)" }
                    th scope="col" { "Plugin calls (errors)" } th scope="col" { "Listeners" }
                } }
                tbody { @for (node, report, at) in &gateways {
                    (row(node, report, *at, newest, now, rate(rates.get(node).copied(), seconds)))
                } }
            } }
        }
        p.note { "From the gateways' own reports to this control plane. Requests/s and error rate: the requests the gateway "
            "finished in the previous and the current UTC minute (its usage reports), over the " (seconds) " s they span. "
            "Plugin calls are totals since the gateway started." }
    })
}

/// (requests/s, error rate) as shown, from (requests, 5xx) over `seconds`.
fn rate(counts: Option<(i64, i64)>, seconds: i64) -> (String, String) {
    let (requests, errors) = counts.unwrap_or((0, 0));
    let per_second = requests as f64 / seconds.max(1) as f64;
    let error_rate = if requests > 0 {
        format!("{:.1} %", errors as f64 * 100.0 / requests as f64)
    } else {
        "–".to_owned()
    };
    (format!("{per_second:.2}"), error_rate)
}

fn row(
    node: &str,
    report: &str,
    at: i64,
    newest: Option<i64>,
    now: i64,
    (per_second, error_rate): (String, String),
) -> Markup {
    let v: serde_json::Value = serde_json::from_str(report).unwrap_or_default();
    let revision = v.get("revision").and_then(serde_json::Value::as_i64);
    let healthy = v
        .get("healthy")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let error = v.get("error").and_then(serde_json::Value::as_str);
    let counter = |k: &str| {
        v.get("counters")
            .and_then(|c| c.get(k))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    let listeners: Vec<&str> = v
        .get("listeners")
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    let age_s = (now - at).max(0) / 1000;
    html! {
        tr {
            th scope="row" { (node) }
            td {
                @if let Some(r) = revision { (r) } @else { "none" }
                @if revision.is_some() && revision != newest { " " span.badge.warn { "behind" } }
            }
            td {
                @if now - at > STALE_MS { span.badge.bad { "stale" } }
                @else if healthy { span.badge.good { "healthy" } }
                @else { span.badge.bad { "not ready" } }
                @if let Some(e) = error { br; span.note { (e) } }
            }
            td { (when(at)) br; span.note { (age_s) " s ago" } }
            td.rate { (per_second) }
            td.error-rate { (error_rate) }
            td { (counter("plugin_calls")) " (" (counter("plugin_errors")) ")" }
            td { (listeners.join(", ")) }
        }
    }
}
