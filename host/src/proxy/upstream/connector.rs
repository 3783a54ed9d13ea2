//! The upstream connector: TCP (with the upstream's connect timeout) and, for `https://`
//! targets, TLS with rustls via hyper-rustls. Verification is against the upstream's `ca` or the
//! Mozilla roots compiled in (webpki-roots); SNI and the verified name are the target host or
//! `server_name`; a client certificate is presented when configured; h2 is offered by ALPN when
//! `http2 = true`. One connector per distinct setting (see `UpstreamTls::cache_key`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_rustls::{
    FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream,
};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme, version};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use crate::config::UpstreamTls;
use crate::proxy::error::BoxError;
use crate::tls::material::provider;

/// The connection type upstream clients speak over.
pub type UpstreamStream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Connects to upstream targets; an invalid TLS setup fails each connect (a 502), never a
/// panic. Clone is cheap.
#[derive(Clone, Debug)]
pub struct Connector(Result<HttpsConnector<HttpConnector>, Arc<str>>);

impl Connector {
    /// A connector with this connect timeout and, for `https://` upstreams, these TLS settings.
    pub fn new(connect_timeout: Duration, tls: Option<&UpstreamTls>) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        // The https connector reads the scheme itself.
        http.enforce_http(false);
        let inner = client_config(tls)
            .map(|config| {
                let builder = HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_or_http();
                let builder = match tls
                    .and_then(|t| t.server_name.as_deref())
                    .and_then(|n| ServerName::try_from(n.to_owned()).ok())
                {
                    Some(name) => {
                        builder.with_server_name_resolver(FixedServerNameResolver::new(name))
                    }
                    None => builder,
                };
                match tls.is_some_and(|t| t.http2) {
                    true => builder.enable_http1().enable_http2().wrap_connector(http),
                    false => builder.enable_http1().wrap_connector(http),
                }
            })
            .map_err(|e| {
                tracing::error!(error = %e, "upstream TLS setup failed");
                Arc::from(e.to_string())
            });
        Self(inner)
    }
}

/// TLS 1.3 and 1.2, trust anchors from `ca` or webpki-roots, the client certificate if any.
fn client_config(tls: Option<&UpstreamTls>) -> Result<ClientConfig, rustls::Error> {
    let roots = match tls.and_then(|t| t.ca.as_ref()) {
        Some(ca) => ca.roots.clone(),
        None => Arc::new(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])?
        .with_root_certificates(roots);
    Ok(match tls.and_then(|t| t.client_cert.as_ref()) {
        Some(cert) => {
            builder.with_client_cert_resolver(Arc::new(ClientCert(cert.certified.clone())))
        }
        None => builder.with_no_client_auth(),
    })
}

/// Always presents the configured certificate when the upstream asks for one.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // Present it only when the key can sign with a scheme the upstream accepts.
        self.0
            .key
            .choose_scheme(sigschemes)
            .is_some()
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpstreamStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &mut self.0 {
            Ok(inner) => inner.poll_ready(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match &mut self.0 {
            Ok(inner) => Box::pin(inner.call(uri)),
            Err(message) => {
                let message = message.clone();
                Box::pin(async move { Err(format!("upstream TLS setup failed: {message}").into()) })
            }
        }
    }
}
