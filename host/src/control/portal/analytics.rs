//! Usage analytics pages from the control plane's store (`store_usage`): the dashboard's
//! `/dashboard/usage` (everything, one route, one consumer or both, chosen with a GET form) and
//! the series part of a developer's own usage page. Requests and errors as bars, p50 and p99
//! latency as lines, over the last hour by minute and the last 30 days by day; the top
//! consumers; quota use per plan (`quota_use`). Every figure says where it comes from.

use maud::{Markup, html};

use super::chart::{Bar, Line, bars, lines};
use super::page::when;
use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::store::now_ms;
use crate::control::store_usage::DAY_MS;
use crate::control::store_usage_read::{ConsumerTotal, Grain, Slice, Slot, Span};
use crate::latency;

/// Where the series' figures come from, said under them.
pub const SOURCE: &str = "Where these figures come from: every gateway that follows this control plane counts \
    each finished request (by route, the consumer its auth plugin identified, the status sent and the time from \
    arrival to the last body byte) and reports the counts every 5 seconds (POST /v1/node/usage); the control plane \
    adds up all gateways. Errors are 5xx answers; 4xx answers are counted apart. Latency percentiles are read \
    from histograms with buckets 1.2× apart (within about 10 %). Minutes are kept 48 hours, days 400 days.";

/// The choice made in the page's form.
#[derive(Debug, Default)]
pub struct Choice {
    /// A route name, or every route.
    pub route: Option<String>,
    /// A consumer name, or every consumer.
    pub consumer: Option<String>,
}

impl Choice {
    /// From the query string (`route=...&consumer=...`; empty means every one).
    pub fn parse(query: &str) -> Result<Choice, ApiError> {
        let mut choice = Choice::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let value = (!v.trim().is_empty()).then(|| v.trim().to_owned());
            if value.as_ref().is_some_and(|v| v.len() > 200) {
                return Err(ApiError::BadRequest(format!(
                    "`{k}` is longer than 200 bytes"
                )));
            }
            match &*k {
                "route" => choice.route = value,
                "consumer" => choice.consumer = value,
                _ => return Err(ApiError::BadRequest(format!("unknown parameter `{k}`"))),
            }
        }
        Ok(choice)
    }

    fn slice(&self) -> Slice<'_> {
        match (self.route.as_deref(), self.consumer.as_deref()) {
            (None, None) => Slice::All,
            (Some(r), None) => Slice::Route(r),
            (None, Some(c)) => Slice::Consumer(c),
            (Some(r), Some(c)) => Slice::Both(r, c),
        }
    }

    fn describe(&self) -> String {
        let route = self
            .route
            .as_deref()
            .map_or("every route".into(), |r| format!("route {r}"));
        let consumer = self
            .consumer
            .as_deref()
            .map_or("every consumer".into(), |c| format!("consumer {c}"));
        format!("{route}, {consumer}")
    }
}

/// The dashboard's usage page body.
pub async fn dashboard_page(ctl: &Control, choice: &Choice) -> Result<Markup, ApiError> {
    let now = now_ms();
    let routes = ctl.store.usage_routes(now).await?;
    let day = ctl
        .store
        .usage_top_consumers(now - DAY_MS + 3_600_000, Grain::Hour, Some(10))
        .await?;
    let month = ctl
        .store
        .usage_top_consumers(Span::Month.start(now), Grain::Day, Some(10))
        .await?;
    let series = series(ctl, choice.slice(), now, &choice.describe()).await?;
    let quota = super::quota_use::section(ctl, now).await?;
    Ok(html! {
        form.inline #usage-choice method="get" action="/dashboard/usage" {
            label for="route" { "Route" }
            select #route name="route" {
                option value="" { "Every route" }
                @for r in &routes {
                    option value=(r) selected[choice.route.as_deref() == Some(r.as_str())] { (r) }
                }
            }
            label for="consumer" { "Consumer" }
            input #consumer type="text" name="consumer" value=(choice.consumer.as_deref().unwrap_or(""))
                placeholder="every consumer";
            button type="submit" { "Show" }
        }
        (series)
        h2 { "Top consumers" }
        div.scroll { (top_table("top-day", "Last 24 hours (the current hour and the 23 before)", &day)) }
        div.scroll { (top_table("top-month", "Last 30 days (today and the 29 before)", &month)) }
        (quota)
    })
}

/// Charts of `slice` over the last hour and the last 30 days, with their source.
pub async fn series(
    ctl: &Control,
    slice: Slice<'_>,
    now: i64,
    what: &str,
) -> Result<Markup, ApiError> {
    let hour = ctl.store.usage_series(Span::Hour, slice, now).await?;
    let month = ctl.store.usage_series(Span::Month, slice, now).await?;
    let total = |s: &[Slot]| s.iter().map(|s| s.counts.requests).sum::<i64>();
    let errors = |s: &[Slot]| s.iter().map(|s| s.counts.errors).sum::<i64>();
    Ok(html! {
        section #usage-hour {
            h2 { "Last hour, by minute" }
            p { "For " (what) ": " strong.requests { (total(&hour)) } " requests, "
                strong.errors { (errors(&hour)) } " errors (5xx)." }
            (bars(&format!("Requests per minute, last hour (UTC), {what}; errors (5xx) in red"), &bar_data(&hour, Span::Hour)))
            (latency_chart(&format!("Latency per minute, last hour, {what}"), &hour, Span::Hour))
        }
        section #usage-month {
            h2 { "Last 30 days, by day" }
            p { "For " (what) ": " strong.requests { (total(&month)) } " requests, "
                strong.errors { (errors(&month)) } " errors (5xx)." }
            (bars(&format!("Requests per day, last 30 days (UTC), {what}; errors (5xx) in red"), &bar_data(&month, Span::Month)))
            (latency_chart(&format!("Latency per day, last 30 days, {what}"), &month, Span::Month))
        }
        p.note { (SOURCE) " Shown at " (when(now)) "." }
    })
}

fn label(at_ms: i64, span: Span) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(at_ms / 1000) else {
        return at_ms.to_string();
    };
    match span {
        Span::Hour => format!("{:02}:{:02}", t.hour(), t.minute()),
        Span::Month => format!("{:02}-{:02}", u8::from(t.month()), t.day()),
    }
}

fn bar_data(slots: &[Slot], span: Span) -> Vec<Bar> {
    slots
        .iter()
        .map(|s| Bar {
            label: label(s.at_ms, span),
            value: s.counts.requests,
            part: s.counts.errors,
        })
        .collect()
}

fn latency_chart(title: &str, slots: &[Slot], span: Span) -> Markup {
    let labels: Vec<String> = slots.iter().map(|s| label(s.at_ms, span)).collect();
    let q = |p: f64| -> Vec<Option<f64>> {
        slots
            .iter()
            .map(|s| latency::quantile_ms(&s.counts.latency, p))
            .collect()
    };
    lines(
        title,
        "ms",
        &labels,
        &[
            Line {
                name: "p50",
                values: q(0.5),
            },
            Line {
                name: "p99",
                values: q(0.99),
            },
        ],
    )
}

fn top_table(id: &str, caption: &str, rows: &[ConsumerTotal]) -> Markup {
    let link = |c: &str| {
        let enc: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
        format!("/dashboard/usage?consumer={enc}")
    };
    html! {
        table id=(id) {
            caption.note { (caption) }
            thead { tr { th scope="col" { "Consumer" } th scope="col" { "Requests" }
                th scope="col" { "Errors (5xx)" } th scope="col" { "Client errors (4xx)" } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="4" { "No requests." } } }
                @for r in rows { tr {
                    th scope="row" { a href=(link(&r.consumer)) { (r.consumer) } }
                    td { (r.requests) } td { (r.errors) } td { (r.client_errors) }
                } }
            }
        }
    }
}
