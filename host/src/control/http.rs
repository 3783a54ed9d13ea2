//! The control API's HTTP edge: the one place an error becomes a response (status and a JSON
//! body saying what was wrong), JSON answers, and reading a request body under a cap.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;

use super::store::StoreError;
use crate::config::ConfigIssue;

/// The response type of every handler.
pub type Answer = Response<Full<Bytes>>;

/// Why a request failed; [`ApiError::into_response`] is the only mapping to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown bearer token.
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// The token's role does not allow this.
    #[error("role `{role}` may not {action}")]
    Forbidden {
        /// The caller's role.
        role: &'static str,
        /// What it tried.
        action: &'static str,
    },
    /// No such route or object.
    #[error("{0}")]
    NotFound(String),
    /// Method not allowed on this path.
    #[error("method not allowed")]
    Method,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The name or key exists already.
    #[error("{0}")]
    Conflict(String),
    /// The config is invalid: nothing was stored.
    #[error("the config is invalid ({} error(s)); nothing was stored", .0.len())]
    InvalidConfig(Vec<ConfigIssue>),
    /// The body is larger than allowed.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something else on the server's side.
    #[error("{0}")]
    Internal(String),
}

#[derive(Serialize)]
struct IssueJson<'a> {
    path: &'a str,
    message: &'a str,
}

impl ApiError {
    /// The HTTP answer: status and `{"error": code, "message": ..., ...}`.
    pub fn into_response(self) -> Answer {
        let (status, code) = match &self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Method => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::InvalidConfig(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_config"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if let ApiError::Store(e) = &self {
            tracing::error!(error = %e, "control plane store failed");
        }
        let mut body = serde_json::json!({ "error": code, "message": self.to_string() });
        if let ApiError::InvalidConfig(issues) = &self {
            let list: Vec<IssueJson<'_>> = issues
                .iter()
                .map(|i| IssueJson {
                    path: &i.path,
                    message: &i.message,
                })
                .collect();
            body["issues"] = serde_json::json!(list);
        }
        let mut response = json(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"tollgate-control\""),
            );
        }
        response
    }
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &impl Serialize) -> Answer {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer with raw bytes and a content type.
pub fn bytes(content_type: &'static str, body: Vec<u8>) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// Read a body of at most `cap` bytes.
pub async fn read_body(body: Incoming, cap: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge(cap)),
        Err(e) => Err(ApiError::BadRequest(format!("cannot read the body: {e}"))),
    }
}

/// Parse a JSON body into `T`, naming the field that was wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::BadRequest(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid JSON body at `{path}`: {inner}"))
        }
    })
}
