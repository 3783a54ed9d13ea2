//! The dashboard's alerts page: the newest spike alerts (series, metric, value against the
//! baseline, z-score, when) and how their webhook deliveries went. Any signed-in operator role
//! sees it, like `GET /v1/alerts`.

use maud::{Markup, html};

use super::page::when;
use crate::control::Control;
use crate::control::alerts::detector::Metric;
use crate::control::alerts::store::{Alert, Delivery};
use crate::control::http::ApiError;

/// Alerts shown.
const SHOWN: i64 = 200;

/// The alerts page's body.
pub async fn page(ctl: &Control) -> Result<Markup, ApiError> {
    let alerts = ctl.store.alerts(SHOWN).await?;
    Ok(html! {
        @if alerts.is_empty() { p { "No spike alert yet." } } @else {
            div.scroll { table #alerts {
                caption.note { "Newest first" }
                thead { tr {
                    th scope="col" { "Detected" } th scope="col" { "Route" } th scope="col" { "Consumer" }
                    th scope="col" { "Metric" } th scope="col" { "Value" } th scope="col" { "Baseline" }
                    th scope="col" { "z" } th scope="col" { "Webhooks" }
                } }
                tbody { @for a in &alerts { (row(a)) } }
            } }
        }
        p.note { "A minute spikes when it is far above its series' rolling baseline (z-score, ratio and "
            "a minimum volume); see docs/control-plane.md, \"Spike alerts\". Webhooks are managed with "
            "POST /v1/alerts/webhooks (admins)." }
    })
}

fn row(a: &Alert) -> Markup {
    html! {
        tr {
            td { (when(a.detected_ms)) }
            th scope="row" { (a.series.route) }
            td { @if let Some(c) = &a.series.consumer { (c) } @else { span.note { "all" } } }
            td { (metric(a.metric)) }
            td { (value(a.metric, a.value)) }
            td { (value(a.metric, a.baseline)) }
            td { (format!("{:.1}", a.z)) }
            td { @if a.deliveries.is_empty() { span.note { "none configured" } }
                 @for d in &a.deliveries { (delivery(d)) br; } }
        }
    }
}

fn metric(m: Metric) -> &'static str {
    match m {
        Metric::RequestRate => "requests/min",
        Metric::ErrorRate => "error rate",
    }
}

fn value(m: Metric, v: f64) -> String {
    match m {
        Metric::RequestRate => format!("{v:.0}/min"),
        Metric::ErrorRate => format!("{:.1} %", v * 100.0),
    }
}

fn delivery(d: &Delivery) -> Markup {
    let tries = if d.attempts == 1 {
        "attempt"
    } else {
        "attempts"
    };
    html! {
        @match d.state.as_str() {
            "delivered" => span.badge.good { "delivered" },
            "failed" => span.badge.bad { "failed" },
            _ => span.badge.warn { "pending" },
        }
        " " span.note { (d.attempts) " " (tries) @if !d.last_error.is_empty() { " · last error: " (d.last_error) } }
    }
}
