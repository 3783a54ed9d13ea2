//! What an author feeds the plugin: the request (and the upstream's response) as described in
//! JSON, and their conversion into the chain's request and response state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;

use super::error::TestError;
use crate::chain::{RequestState, ResponseState};

/// A request as a plugin author describes it (the `--request` JSON of `tollgate plugin test`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// Method (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// Path as the gateway would route it (default `/`). Normalised by the gateway's path rule.
    #[serde(default)]
    pub path: Option<String>,
    /// Query string without `?`.
    #[serde(default)]
    pub query: Option<String>,
    /// Headers: `{"name": "value"}` or `{"name": ["v1", "v2"]}`.
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// Body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Body as base64 (for binary bodies); not with `body`.
    #[serde(default)]
    pub body_base64: Option<String>,
    /// The client's IP address (default `127.0.0.1`).
    #[serde(default)]
    pub client_ip: Option<String>,
    /// The matched route's name (default `test`).
    #[serde(default)]
    pub route: Option<String>,
    /// Context values set by earlier plugins (e.g. `consumer` from `auth`).
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// The upstream's answer for the response phase (default 200, no headers, empty body).
    #[serde(default)]
    pub response: Option<TestResponse>,
}

/// The upstream's response fed to the response phase.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestResponse {
    /// Status (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Headers, as for the request.
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// Body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Body as base64; not with `body`.
    #[serde(default)]
    pub body_base64: Option<String>,
}

/// A header value or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values, in order.
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            Self::One(v) => vec![v.as_str()],
            Self::Many(vs) => vs.iter().map(String::as_str).collect(),
        }
    }
}

/// A `body` or `body_base64` (not both) as bytes; empty when neither is given.
fn body_of(text: &Option<String>, b64: &Option<String>, what: &str) -> Result<Bytes, TestError> {
    match (text, b64) {
        (Some(_), Some(_)) => Err(TestError::BadInput(format!(
            "{what}: give `body` or `body_base64`, not both"
        ))),
        (Some(text), None) => Ok(Bytes::from(text.clone())),
        (None, Some(b64)) => BASE64
            .decode(b64.trim())
            .map(Bytes::from)
            .map_err(|e| TestError::BadInput(format!("{what}.body_base64: {e}"))),
        (None, None) => Ok(Bytes::new()),
    }
}

/// The upstream response's body as bytes.
pub(super) fn upstream_body(resp: &TestResponse) -> Result<Bytes, TestError> {
    body_of(&resp.body, &resp.body_base64, "response")
}

/// Headers as described, checked to be valid names and values.
fn header_map(headers: &BTreeMap<String, OneOrMany>, what: &str) -> Result<HeaderMap, TestError> {
    let mut map = HeaderMap::new();
    for (name, values) in headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            TestError::BadInput(format!("{what}.headers: `{name}` is not a header name"))
        })?;
        for value in values.values() {
            let v = HeaderValue::from_str(value).map_err(|_| {
                TestError::BadInput(format!("{what}.headers.{name}: invalid header value"))
            })?;
            map.append(n.clone(), v);
        }
    }
    Ok(map)
}

/// The chain's request state for `input`: its path normalised as the gateway would, its body
/// present only when `with_body`.
pub(super) fn request_state(
    input: &TestRequest,
    with_body: bool,
) -> Result<RequestState, TestError> {
    let method = input.method.as_deref().unwrap_or("GET");
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| TestError::BadInput(format!("request.method: `{method}` is not a method")))?;
    let raw_path = input.path.as_deref().unwrap_or("/");
    let path = crate::path::normalize_path(raw_path).map_err(|e| {
        TestError::BadInput(format!(
            "request.path: `{raw_path}` is refused by the path rule: {e}"
        ))
    })?;
    let client_ip: IpAddr = input
        .client_ip
        .as_deref()
        .unwrap_or("127.0.0.1")
        .parse()
        .map_err(|_| TestError::BadInput("request.client_ip: not an IP address".to_owned()))?;
    let body = body_of(&input.body, &input.body_base64, "request")?;
    Ok(RequestState {
        method,
        path,
        query: input.query.clone(),
        headers: header_map(&input.headers, "request")?,
        body: with_body.then_some(body),
        lazy_body: None,
        upstream_error: None,
        client_ip,
        route: Arc::from(input.route.as_deref().unwrap_or("test")),
        request_id: Arc::from("plugin-test"),
        context: input.context.clone().into_iter().collect(),
        trace: None,
        canary_versions: 0,
    })
}

/// The chain's response state for the upstream's answer; its body present only when `with_body`.
pub(super) fn response_state(
    input: &TestResponse,
    with_body: bool,
) -> Result<ResponseState, TestError> {
    let status = input.status.unwrap_or(200);
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| TestError::BadInput(format!("response.status: {status} is not a status")))?;
    let body = upstream_body(input)?;
    Ok(ResponseState {
        status,
        headers: header_map(&input.headers, "response")?,
        body: with_body.then_some(body),
        ..ResponseState::default()
    })
}
