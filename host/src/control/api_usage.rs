//! The usage routes of the control API: `POST /v1/node/usage` (a gateway's usage report, node
//! token) and `GET /v1/usage/minutes?since_ms=N` (the per-minute rows, any management token).
//! A report is checked whole before anything is stored: a bad row refuses it with 400.

use http::StatusCode;
use hyper::body::Incoming;
use serde::Deserialize;

use super::Control;
use super::http::{Answer, ApiError, json, parse_json, read_body};
use super::roles::{Caller, Need};
use super::store::now_ms;
use super::store_usage::{Counts, KEEP_MINUTES_MS, ReportRow};
use crate::latency;

/// Largest report accepted.
const MAX_REPORT_BYTES: usize = 16 << 20;
/// Rows in one report at most.
const MAX_ROWS: usize = 20_000;
/// Longest route or consumer name accepted.
const MAX_NAME: usize = 200;
/// How far ahead of this control plane's clock a gateway's minute may be.
const CLOCK_SKEW_MS: i64 = 300_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    node: String,
    rows: Vec<RawRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    minute_ms: i64,
    route: String,
    consumer: String,
    requests: i64,
    errors: i64,
    client_errors: i64,
    #[serde(default)]
    latency: String,
}

/// `POST /v1/node/usage`.
pub async fn report(ctl: &Control, caller: &Caller, body: Incoming) -> Result<Answer, ApiError> {
    caller.role.check(Need::Node, "report usage")?;
    let report: Report = parse_json(&read_body(body, MAX_REPORT_BYTES).await?)?;
    if report.node.is_empty() || report.node.len() > MAX_NAME {
        return Err(ApiError::BadRequest(
            "`node` must be a non-empty string of at most 200 bytes".into(),
        ));
    }
    if report.rows.len() > MAX_ROWS {
        return Err(ApiError::BadRequest(format!(
            "a report has at most {MAX_ROWS} rows, not {}",
            report.rows.len()
        )));
    }
    let now = now_ms();
    let rows = report
        .rows
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            check(raw, now).map_err(|e| ApiError::BadRequest(format!("rows[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ctl.store.add_usage(&report.node, &rows).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"ok": true, "rows": rows.len()}),
    ))
}

/// A report row, checked: a whole minute within the kept window, names of sane length,
/// counts that add up.
fn check(raw: RawRow, now: i64) -> Result<ReportRow, String> {
    if raw.minute_ms.rem_euclid(60_000) != 0 {
        return Err("`minute_ms` must be the start of a minute (a multiple of 60000)".into());
    }
    if raw.minute_ms < now - KEEP_MINUTES_MS || raw.minute_ms > now + CLOCK_SKEW_MS {
        return Err("`minute_ms` is outside the last 48 hours".into());
    }
    for (field, value) in [("route", &raw.route), ("consumer", &raw.consumer)] {
        if value.is_empty() || value.len() > MAX_NAME {
            return Err(format!("`{field}` must be 1 to {MAX_NAME} bytes"));
        }
    }
    if raw.requests < 0 || raw.errors < 0 || raw.client_errors < 0 {
        return Err("counts cannot be negative".into());
    }
    if raw.errors.saturating_add(raw.client_errors) > raw.requests {
        return Err("`errors` + `client_errors` cannot exceed `requests`".into());
    }
    let mut counts = Counts {
        requests: raw.requests,
        errors: raw.errors,
        client_errors: raw.client_errors,
        ..Counts::default()
    };
    latency::add_text(&mut counts.latency, &raw.latency)?;
    Ok(ReportRow {
        minute_ms: raw.minute_ms,
        route: raw.route,
        consumer: raw.consumer,
        counts,
    })
}

/// `GET /v1/usage/minutes?since_ms=N`: rows of the last 48 hours at most.
pub async fn minutes(ctl: &Control, caller: &Caller, query: &str) -> Result<Answer, ApiError> {
    caller.role.check(Need::Read, "read usage")?;
    let mut since = now_ms() - 3_600_000;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "since_ms" => {
                since = v
                    .parse()
                    .map_err(|_| ApiError::BadRequest("`since_ms` must be a number".into()))?;
            }
            _ => return Err(ApiError::BadRequest(format!("unknown parameter `{k}`"))),
        }
    }
    let rows = ctl.store.usage_minutes_since(since).await?;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"minute_ms": r.minute_ms, "route": r.route, "consumer": r.consumer,
                "requests": r.requests, "errors": r.errors, "client_errors": r.client_errors})
        })
        .collect();
    Ok(json(StatusCode::OK, &list))
}
