//! `tollgate control`: the control plane. An HTTP API (plain or TLS with the gateway's rustls
//! setup) that stores gateway configs as revisions, plugin modules by SHA-256, consumers and
//! their API keys (as hashes), and management and node tokens with roles; every change is in
//! the audit log. Gateways started with `tollgate run --control URL` follow it (see
//! `crate::follow`). Documented in docs/control-plane.md; the API in `openapi.json`.
//!
//! Layers, each using only those above it: `store`, `store_people`, `store_usage` and `store_usage_read` (SQLite or PostgreSQL),
//! `http` (errors → responses), `roles`, `diff`, `mask` (secrets hidden from viewers), `validate` (the code of `tollgate check`),
//! `store_docs` (OpenAPI documents), `openapi_doc` (checks them),
//! `ops` (changes shared by the API and the pages), `alerts` (spike alerts: detector, webhooks,
//! `/v1/alerts`), `api`, `api_people`, `api_docs`, `api_usage` and `api_rollout` (the JSON API under
//! `/v1/`) and `portal` (the developer portal and the operator dashboard, HTML), then this
//! module (serving). It never imports the proxy.

mod alerts;
mod api;
mod api_docs;
mod api_people;
mod api_rollout;
mod api_usage;
mod diff;
mod http;
mod mask;
mod openapi_doc;
mod ops;
mod portal;
mod roles;
mod store;
mod store_docs;
mod store_people;
mod store_portal;
mod store_usage;
mod store_usage_read;
mod store_usage_totals;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use alerts::{AlertArgs, AlertOptions};
pub use diff::unified as diff_text;
pub use roles::{hash_hex, hex};

/// SHA-256 hex of bytes: a module's content address.
pub fn hash_bytes(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(bytes))
}
pub use api_rollout::pick_signature;
pub use portal::SignUp;
pub use store::{Store, StoreError, now_ms};
pub use store_usage::{Counts as UsageCounts, ReportRow as UsageReportRow, UsageMinute};
pub use validate::{module_hash, module_refs, write_atomic};

/// The API's OpenAPI 3 description, served at `GET /v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Where gateways are: the newest revision and the key version. A node's watch returns when
/// either moves past what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cursor {
    /// Newest revision id (0 before the first).
    pub revision: i64,
    /// Key version (moves with every key or consumer change).
    pub keys: i64,
}

/// The running control plane's shared parts.
pub struct Control {
    store: Store,
    validator: validate::Validator,
    changes: watch::Sender<Cursor>,
    portal: portal::Portal,
}

impl Control {
    /// Tell waiting gateways what changed.
    async fn changed(&self) -> Result<(), StoreError> {
        let cursor = Cursor {
            revision: self.store.current().await?.map_or(0, |r| r.id),
            keys: self.store.keys_version().await?,
        };
        self.changes.send_replace(cursor);
        Ok(())
    }
}

/// How to run the control plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// `sqlite://FILE` or `postgres://...`.
    pub database: String,
    /// Work directory: materialised modules and candidate configs being checked.
    pub work_dir: PathBuf,
    /// An admin token to create at start when no token with its hash exists (bootstrap).
    pub bootstrap_admin_token: Option<String>,
    /// Serve TLS with this certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Who may create a developer account in the portal.
    pub signup: SignUp,
    /// Spike alerts' rule and schedule.
    pub alerts: AlertOptions,
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file or socket could not be used.
    #[error("{0}")]
    Io(String),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A started control plane: its bound address.
pub struct Running {
    /// Where it listens (useful with port 0).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serve until the task ends (it does not, short of a panic).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Open the store, bootstrap the admin token, bind and serve.
pub async fn start(options: Options) -> Result<Running, ControlError> {
    let store = Store::open(&options.database).await?;
    if let Some(token) = &options.bootstrap_admin_token {
        bootstrap(&store, token).await?;
    }
    let validator = validate::Validator::new(&options.work_dir)
        .map_err(|e| ControlError::Io(format!("work dir {}: {e}", options.work_dir.display())))?;
    let cursor = Cursor {
        revision: store.current().await?.map_or(0, |r| r.id),
        keys: store.keys_version().await?,
    };
    // The session cookie is `Secure` unless the control plane serves plain HTTP on a loopback
    // address (a local trial, or tests), where some browsers would not keep a `Secure` cookie.
    let secure_cookie = options.tls.is_some() || !options.addr.ip().is_loopback();
    let control = Arc::new(Control {
        store,
        validator,
        changes: watch::Sender::new(cursor),
        portal: portal::Portal::new(options.signup, secure_cookie),
    });
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| ControlError::Io(format!("cannot listen on {}: {e}", options.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ControlError::Io(e.to_string()))?;
    tracing::info!(%addr, tls = tls.is_some(), database = %redact_url(&options.database), "control plane listening");
    alerts::spawn(control.clone(), options.alerts.clone());
    tokio::spawn(prune_usage(control.clone()));
    let task = tokio::spawn(accept_loop(listener, control, tls));
    Ok(Running { addr, task })
}

/// Create the bootstrap admin token unless it exists.
async fn bootstrap(store: &Store, token: &str) -> Result<(), ControlError> {
    if token.len() < 16 {
        return Err(ControlError::Io(
            "the bootstrap admin token must be at least 16 characters".into(),
        ));
    }
    let hash = hash_hex(token);
    if store.token_by_hash(&hash).await?.is_none() {
        let record = store_people::Token {
            id: "tok_bootstrap".to_owned(),
            name: "bootstrap-admin".to_owned(),
            role: "admin".to_owned(),
            created_ms: store::now_ms(),
        };
        store.add_token(&record, &hash).await?;
        store
            .audit("control", "token.create", "token/tok_bootstrap", "admin")
            .await?;
    }
    Ok(())
}

/// Drop usage rows past their retention (`store_usage`), at start and every ten minutes.
async fn prune_usage(control: Arc<Control>) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        interval.tick().await;
        match control.store.prune_usage(store::now_ms()).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "old usage rows pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning usage failed"),
        }
    }
}

/// A TLS acceptor from PEM files, with the gateway's provider and protocol versions.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, ControlError> {
    let pair =
        crate::tls::material::load_cert_key(cert, key).map_err(|(_, e)| ControlError::Tls(e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::material::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ControlError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
            pair.certified,
        )));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    listener: TcpListener,
    control: Arc<Control>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let control = control.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let control = control.clone();
                async move { Ok::<_, std::convert::Infallible>(serve(control, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => builder.serve_connection(TokioIo::new(s), service).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
        });
    }
}

/// The JSON API under `/v1/`, pages and assets everywhere else.
async fn serve(control: Arc<Control>, req: ::http::Request<hyper::body::Incoming>) -> http::Answer {
    if req.uri().path().starts_with("/v1/") {
        api::handle(control, req).await
    } else {
        portal::handle(&control, req).await
    }
}

/// A database URL without its password, for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}
