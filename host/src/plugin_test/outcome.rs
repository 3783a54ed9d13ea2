//! What comes out of a test: the request as the plugin left it, the response the client would
//! get, context changes and failures, gathered in an [`Outcome`].

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, StatusCode};
use serde::Serialize;

use crate::chain::RequestState;

/// A header list as it comes out: `[name, value]` pairs in order, names lower case.
pub type HeaderList = Vec<(String, String)>;

/// The request as the plugin left it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequestView {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query.
    pub query: Option<String>,
    /// Headers.
    pub headers: HeaderList,
}

/// A response: the plugin's own (`respond`) or the upstream's after the response phase.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResponseView {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderList,
    /// Body as text (lossy when it is not UTF-8; see `body_base64`).
    pub body: String,
    /// Body as base64 when it is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// What changed in the per-request context.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ContextChanges {
    /// Keys set (or changed) by the plugin, with their new values.
    pub set: BTreeMap<String, String>,
    /// Keys the plugin removed.
    pub removed: Vec<String>,
}

/// A plugin failure (trap, deadline, memory cap, bad action).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailureView {
    /// Which phase failed.
    pub phase: &'static str,
    /// `trap`, `timeout`, `memory_limit`, `bad_action`, `unavailable`, `state_unavailable`.
    pub kind: &'static str,
    /// The host's message.
    pub message: String,
}

/// What the plugin decided for one request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// `continue`, `respond` or `failed`.
    pub action: &'static str,
    /// The plugin's reply (when it answered itself, in either phase) or the upstream's response
    /// after the response phase; `None` when it failed.
    pub response: Option<ResponseView>,
    /// The request as it would reach the upstream (or as it was when the plugin answered).
    pub request: RequestView,
    /// Context changes over all phases.
    pub context: ContextChanges,
    /// Phases that ran: `request`, `response`, `log`.
    pub phases: Vec<&'static str>,
    /// The failure, when `action` is `failed`.
    pub failure: Option<FailureView>,
}

/// The outcome of a plugin that failed in `phase`.
pub(super) fn failed(
    req: &RequestState,
    before: &crate::chain::Context,
    phases: Vec<&'static str>,
    phase: &'static str,
    failure: crate::chain::PluginFailure,
) -> Outcome {
    Outcome {
        action: "failed",
        response: None,
        request: RequestView::of(req),
        context: context_changes(before, &req.context),
        phases,
        failure: Some(FailureView {
            phase,
            kind: failure.kind.as_str(),
            message: failure.message,
        }),
    }
}

/// Headers as `[name, value]` pairs in order, values as (lossy) text.
fn header_list(headers: &HeaderMap) -> HeaderList {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl RequestView {
    /// The request as it stands.
    pub(super) fn of(req: &RequestState) -> Self {
        Self {
            method: req.method.as_str().to_owned(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: header_list(&req.headers),
        }
    }
}

impl ResponseView {
    /// A response; a body that is not UTF-8 comes as base64 too.
    pub(super) fn new(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let (body, body_base64) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), None),
            Err(_) => (
                String::from_utf8_lossy(body).into_owned(),
                Some(BASE64.encode(body)),
            ),
        };
        Self {
            status: status.as_u16(),
            headers: header_list(headers),
            body,
            body_base64,
        }
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl RequestView {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Keys set or changed, and keys removed, from `before` to `after`.
pub(super) fn context_changes(
    before: &crate::chain::Context,
    after: &crate::chain::Context,
) -> ContextChanges {
    let set = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut removed: Vec<String> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    removed.sort();
    ContextChanges { set, removed }
}
