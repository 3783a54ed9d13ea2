//! A small HTTP client for the control API, used by `tollgate ctl` and by gateways following a
//! control plane: bearer token, JSON, `https://` with the system's web PKI roots or a given CA
//! (rustls, the gateway's provider), and a timeout on every call.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why a call to the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Not reachable, or no answer in time.
    #[error("control plane unreachable: {0}")]
    Unreachable(String),
    /// It answered with an error status.
    #[error("control plane answered {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The JSON body (or the text, as a JSON string).
        body: serde_json::Value,
    },
    /// The client could not be set up (bad URL, unreadable CA).
    #[error("{0}")]
    Setup(String),
}

/// A client for one control plane with one token.
#[derive(Clone)]
pub struct ControlClient {
    base: String,
    token: Arc<str>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl ControlClient {
    /// A client for `url` (`http://` or `https://`), trusting `ca` (PEM) for TLS when given, else
    /// the web PKI roots.
    pub fn new(url: &str, token: &str, ca: Option<&Path>) -> Result<Self, ClientError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::Setup(format!(
                "control plane URL must start with http:// or https://, not {url:?}"
            )));
        }
        let roots = match ca {
            Some(path) => {
                crate::tls::material::load_ca(path)
                    .map_err(ClientError::Setup)?
                    .roots
            }
            None => Arc::new(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
        };
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::material::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| ClientError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            token: Arc::from(token),
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
        })
    }

    /// One call: `path` under the base URL, an optional body with its content type; the status
    /// and body of a 2xx answer, else [`ClientError::Status`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            );
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder
            .body(body)
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| ClientError::Unreachable(format!("{e:?}")))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Unreachable(format!("no answer within {timeout:?}")))??;
        if status.is_success() {
            Ok((status, bytes))
        } else {
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            });
            Err(ClientError::Status { status, body })
        }
    }

    /// A call whose answer is JSON.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let (_, bytes) = self.call(method, path, body, timeout).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Unreachable(format!("answer is not JSON: {e}")))
    }
}
