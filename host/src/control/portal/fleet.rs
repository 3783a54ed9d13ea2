//! The dashboard's fleet page: each gateway's last report (`POST /v1/node/status`, sent on
//! every change and every quiet watch): the revision it serves against the newest, health, when
//! it last reported, and its counters.

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
    Ok(html! {
        p { "Newest config revision: " strong { @if let Some(n) = newest { (n) } @else { "none yet" } } ". "
            a href="/dashboard/revisions" { "See the revisions" } }
        @if gateways.is_empty() { p { "No gateway has reported yet." } } @else {
            div.scroll { table #fleet {
                caption.note { "Each gateway's last report" }
                thead { tr {
                    th scope="col" { "Gateway" } th scope="col" { "Revision" } th scope="col" { "Health" }
                    th scope="col" { "Last report" } th scope="col" { "Plugin calls (errors)" } th scope="col" { "Listeners" }
                } }
                tbody { @for (node, report, at) in &gateways { (row(node, report, *at, newest, now)) } }
            } }
        }
        p.note { "From the gateways' own reports to this control plane. Request rates per gateway are not reported yet: "
            "the counters are totals since the gateway started." }
    })
}

fn row(node: &str, report: &str, at: i64, newest: Option<i64>, now: i64) -> Markup {
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
            td { (counter("plugin_calls")) " (" (counter("plugin_errors")) ")" }
            td { (listeners.join(", ")) }
        }
    }
}
