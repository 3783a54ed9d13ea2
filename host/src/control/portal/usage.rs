//! A developer's usage page: first the series the gateways reported to this control plane
//! (`analytics`, the developer's own consumer only), then the meter's counters read from the
//! gateways: the built-in `meter` plugin counts each
//! consumer's requests in hourly buckets of the gateway's shared state, and each gateway's admin
//! API sums them (`GET /admin/usage`, see `crate::usage`). The control plane asks every gateway
//! that reported in the last two minutes and names an admin address, one call per hour of the
//! last 24, and adds the answers up. With `[state] backend = "redis"` (or a cluster) every
//! gateway reads the same counters, so one gateway is asked instead of all.
//!
//! Not counted: gateways without an admin listener, or whose admin API needs a token (the
//! control plane holds none), and requests on routes without a `meter` in their chain.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use maud::{Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chart::{Bar, bars};
use super::page::when;
use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::store::now_ms;

/// Hours shown.
const HOURS: i64 = 24;
/// A gateway silent for longer is not asked.
const FRESH_MS: i64 = 120_000;
/// Bound on each call to a gateway.
const CALL: Duration = Duration::from_secs(2);

/// Requests and errors in one hour, and per route over the whole window.
#[derive(Debug, Default)]
pub struct Usage {
    /// Per hour, oldest first: (hour start, requests, 4xx + 5xx).
    pub hours: Vec<(OffsetDateTime, i64, i64)>,
    /// Per route: (requests, 4xx + 5xx).
    pub routes: BTreeMap<String, (i64, i64)>,
    /// Gateways asked, and how many answered.
    pub asked: usize,
    /// Gateways that answered.
    pub answered: usize,
}

/// Read `consumer`'s last 24 hours from the gateways.
pub async fn read(ctl: &Control, consumer: &str) -> Result<Usage, ApiError> {
    let now = now_ms();
    let mut admins: Vec<String> = ctl
        .store
        .gateways()
        .await?
        .into_iter()
        .filter(|(_, _, at)| now - at <= FRESH_MS)
        .filter_map(|(_, report, _)| {
            let v: serde_json::Value = serde_json::from_str(&report).ok()?;
            v.get("admin")?.as_str().map(str::to_owned)
        })
        .collect();
    if shared_state(ctl).await? {
        admins.truncate(1);
    }
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let top = OffsetDateTime::now_utc()
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut usage = Usage {
        asked: admins.len(),
        ..Usage::default()
    };
    let mut answered = vec![false; admins.len()];
    for back in (0..HOURS).rev() {
        let from = top - time::Duration::hours(back);
        let to = from + time::Duration::hours(1);
        let calls = admins
            .iter()
            .map(|admin| hour(&client, admin, consumer, from, to));
        let (mut requests, mut errors) = (0, 0);
        for (i, answer) in futures_util::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            let Some(answer) = answer else { continue };
            if let Some(slot) = answered.get_mut(i) {
                *slot = true;
            }
            let (r, e) = counts(answer.get("total"));
            (requests, errors) = (requests + r, errors + e);
            for (route, c) in answer
                .get("routes")
                .and_then(|v| v.as_object())
                .into_iter()
                .flatten()
            {
                let (r, e) = counts(Some(c));
                let slot = usage.routes.entry(route.clone()).or_default();
                *slot = (slot.0 + r, slot.1 + e);
            }
        }
        usage.hours.push((from, requests, errors));
    }
    usage.answered = answered.iter().filter(|a| **a).count();
    Ok(usage)
}

/// Whether the current revision keeps plugins' state in Redis (shared by all gateways).
async fn shared_state(ctl: &Control) -> Result<bool, ApiError> {
    let config = ctl.store.current().await?.and_then(|r| r.config);
    Ok(config
        .and_then(|c| c.parse::<toml::Table>().ok())
        .and_then(|t| {
            let backend = t.get("state")?.get("backend")?.as_str()?.to_owned();
            Some(backend != "memory")
        })
        .unwrap_or(false))
}

/// (requests, 4xx + 5xx) of a `/admin/usage` counts object.
fn counts(v: Option<&serde_json::Value>) -> (i64, i64) {
    let n = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_i64).unwrap_or(0);
    let Some(v) = v else { return (0, 0) };
    let status = v.get("status");
    (
        n(v.get("requests")),
        n(status.and_then(|s| s.get("4xx"))) + n(status.and_then(|s| s.get("5xx"))),
    )
}

/// One gateway's `/admin/usage` for one hour; `None` when it does not answer 200 with JSON.
async fn hour(
    client: &Client<HttpConnector, Empty<Bytes>>,
    admin: &str,
    consumer: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Option<serde_json::Value> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let url = format!(
        "http://{admin}/admin/usage?consumer={}&from={}&to={}",
        enc(consumer),
        enc(&from.format(&Rfc3339).ok()?),
        enc(&to.format(&Rfc3339).ok()?)
    );
    let uri: http::Uri = url.parse().ok()?;
    let response = tokio::time::timeout(CALL, client.get(uri))
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = tokio::time::timeout(CALL, response.into_body().collect())
        .await
        .ok()?
        .ok()?
        .to_bytes();
    serde_json::from_slice(&body).ok()
}

/// The usage page's body: the gateways' reports kept by the control plane (`analytics`), then
/// the meter's counters read from the gateways.
pub async fn usage_page(ctl: &Control, consumer: &str) -> Result<Markup, ApiError> {
    let reported = super::analytics::series(
        ctl,
        crate::control::store_usage_read::Slice::Consumer(consumer),
        now_ms(),
        "your requests",
    )
    .await?;
    let u = read(ctl, consumer).await?;
    let total: i64 = u.hours.iter().map(|h| h.1).sum();
    let errors: i64 = u.hours.iter().map(|h| h.2).sum();
    let hours: Vec<Bar> = u
        .hours
        .iter()
        .map(|(t, r, e)| Bar {
            label: format!("{:02}:00", t.hour()),
            value: *r,
            part: *e,
        })
        .collect();
    Ok(html! {
        (reported)
        h2 { "Last 24 hours, from the meter plugin" }
        p #usage-total { strong { (total) } " requests, " strong { (errors) } " errors (4xx and 5xx) in the last 24 hours." }
        (bars("Requests per hour, last 24 hours (UTC); errors in red", &hours))
        h2 { "Per API" }
        @if u.routes.is_empty() { p { "No requests yet." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "API (route)" } th scope="col" { "Requests" } th scope="col" { "Errors" } } }
                tbody { @for (route, (r, e)) in &u.routes { tr { td { (route) } td { (r) } td { (e) } } } }
            } }
        }
        p.note {
            "Where these figures come from: the meter plugin's hourly counters at the gateways, read through "
            (u.answered) " of " (u.asked) " gateway admin API(s) at " (when(now_ms()))
            ". Requests on routes without a meter, and gateways without a reachable admin API, are not counted."
        }
    })
}
