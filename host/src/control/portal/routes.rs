//! The dashboard's routes page: each route of the current revision with its plugin chain drawn
//! in order, the request phase going out (→) and the response phase coming back (←, only the
//! plugins that declared one, in reverse), and each plugin's live figures summed over the
//! gateways' recent reports (`plugins` in `POST /v1/node/status`): calls, failures, the worst
//! gateway's p50 and p99, and the module's SHA-256. Phases are what each plugin declared when
//! a gateway loaded it, so they are known once a gateway has reported; until then the chain is
//! drawn once, in order. Figures are per plugin entry (shared by every route that uses it).

use std::collections::{BTreeMap, BTreeSet};

use maud::{Markup, html};
use serde_json::Value;

use super::catalogue::{Entry, entries};
use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::store::now_ms;

/// Reports older than this are left out of the figures.
const FRESH_MS: i64 = 120_000;

/// One plugin entry's figures over the fleet.
#[derive(Debug, Default)]
struct Figures {
    gateways: usize,
    calls: u64,
    errors: u64,
    traps: u64,
    timeouts: u64,
    p50_ms: f64,
    p99_ms: f64,
    hashes: BTreeSet<String>,
    response_phase: bool,
}

/// Sum the `plugins` of recent reports by entry name.
fn figures(reports: &[(String, String, i64)], now: i64) -> BTreeMap<String, Figures> {
    let mut by_name: BTreeMap<String, Figures> = BTreeMap::new();
    for (_, report, _) in reports.iter().filter(|(_, _, at)| now - at <= FRESH_MS) {
        let v: Value = serde_json::from_str(report).unwrap_or_default();
        for p in v
            .get("plugins")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = p.get("name").and_then(Value::as_str) else {
                continue;
            };
            let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
            let f = |k: &str| p.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let e = by_name.entry(name.to_owned()).or_default();
            e.gateways += 1;
            e.calls = e.calls.saturating_add(n("calls"));
            e.errors = e.errors.saturating_add(n("errors"));
            e.traps = e.traps.saturating_add(n("traps"));
            e.timeouts = e.timeouts.saturating_add(n("timeouts"));
            e.p50_ms = e.p50_ms.max(f("p50_ms"));
            e.p99_ms = e.p99_ms.max(f("p99_ms"));
            if let Some(h) = p.get("sha256").and_then(Value::as_str) {
                e.hashes.insert(h.to_owned());
            }
            e.response_phase |=
                p.pointer("/phases/response").and_then(Value::as_bool) == Some(true);
        }
    }
    by_name
}

/// The plugin entries of a config and the module each names.
fn modules(config: &str) -> BTreeMap<String, String> {
    let Ok(doc) = config.parse::<toml::Table>() else {
        return BTreeMap::new();
    };
    let plugins = doc.get("plugins").and_then(toml::Value::as_table);
    plugins
        .into_iter()
        .flatten()
        .map(|(name, spec)| {
            let module = spec
                .get("module")
                .and_then(toml::Value::as_str)
                .unwrap_or("");
            (name.clone(), module.to_owned())
        })
        .collect()
}

/// The routes page's body.
pub async fn page(ctl: &Control) -> Result<Markup, ApiError> {
    let current = ctl.store.current().await?;
    let config = current
        .as_ref()
        .and_then(|r| r.config.clone())
        .unwrap_or_default();
    let routes = entries(&config);
    let figures = figures(&ctl.store.gateways().await?, now_ms());
    let modules = modules(&config);
    Ok(html! {
        @if let Some(r) = &current { p.note { "Routes of config revision " (r.id) "; figures from the gateways' reports of the last "
            (FRESH_MS / 1000) " s (calls and failures summed since each gateway loaded the plugin, p50 and p99 of the slowest gateway)." } }
        @if routes.is_empty() { p { "The current revision has no routes." } } @else {
            div.scroll { table #routes {
                caption.note { "Each route's chain: request phase →, response phase ←" }
                thead { tr { th scope="col" { "Route" } th scope="col" { "Path" } th scope="col" { "Chain" } } }
                tbody { @for r in &routes { (route_row(r, &figures)) } }
            } }
            (plugin_table(&modules, &figures))
        }
    })
}

fn route_row(r: &Entry, figures: &BTreeMap<String, Figures>) -> Markup {
    let phases_known = r.chain.iter().all(|p| figures.contains_key(p));
    let back: Vec<&String> = r
        .chain
        .iter()
        .rev()
        .filter(|p| figures.get(*p).is_some_and(|f| f.response_phase))
        .collect();
    html! {
        tr {
            th scope="row" { (r.name) }
            td { code { (r.path) } }
            td {
                @if r.chain.is_empty() { span.note { "no plugins: straight to the upstream" } } @else {
                    ol.chain aria-label={ "Request phase of " (r.name) } {
                        li { "request" } @for p in &r.chain { li { (p) (figures_line(figures.get(p))) } } li { "upstream" }
                    }
                    @if phases_known {
                        ol.chain.back aria-label={ "Response phase of " (r.name) } {
                            li { "response" } @for p in &back { li { (p) } } li { "client" }
                        }
                    } @else {
                        p.note { "Which plugins have a response phase is known once a gateway serving this revision has reported." }
                    }
                }
            }
        }
    }
}

fn figures_line(f: Option<&Figures>) -> Markup {
    html! {
        @if let Some(f) = f {
            span.figures { (f.calls) " calls · " (f.errors) " errors · p99 " (format!("{:.2}", f.p99_ms)) " ms" }
        }
    }
}

fn plugin_table(modules: &BTreeMap<String, String>, figures: &BTreeMap<String, Figures>) -> Markup {
    html! {
        h2 { "Plugins" }
        div.scroll { table #plugins {
            thead { tr {
                th scope="col" { "Plugin" } th scope="col" { "Module" } th scope="col" { "Version (SHA-256)" }
                th scope="col" { "Calls" } th scope="col" { "Errors" } th scope="col" { "Traps" } th scope="col" { "Timeouts" }
                th scope="col" { "p50 ms" } th scope="col" { "p99 ms" } th scope="col" { "Gateways" }
            } }
            tbody { @for (name, module) in modules { @let f = figures.get(name); tr {
                th scope="row" { (name) }
                td { code { (module) } }
                td { @if let Some(f) = f { @for h in &f.hashes { code title=(h) { (h.get(..12).unwrap_or(h)) } " " } } }
                @if let Some(f) = f {
                    td.calls { (f.calls) } td { (f.errors) } td { (f.traps) } td { (f.timeouts) }
                    td { (format!("{:.3}", f.p50_ms)) } td { (format!("{:.3}", f.p99_ms)) } td { (f.gateways) }
                } @else {
                    td colspan="7" { span.note { "no recent report" } }
                }
            } } }
        } }
    }
}
