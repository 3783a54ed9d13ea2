//! TLS termination on a listener: the server config behind an [`ArcSwap`] (a reload stores a
//! new one; connections keep the session they made), certificate choice by SNI, client
//! certificate verification, and the handshake itself, bounded by a timeout.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::identity::ClientIdentity;
use super::material::provider;
use crate::config::{ClientAuth, ListenerTls, PlainHttp};

/// What a listener does with a connection: TLS (with the current certificates) or plain HTTP,
/// and for plain HTTP whether requests are served, redirected to HTTPS or refused.
#[derive(Debug, Clone, Default)]
pub struct ListenerMode {
    /// TLS termination, when the listener has `tls`.
    pub tls: Option<Arc<TlsListener>>,
    /// What plain-HTTP requests get (listeners without `tls`).
    pub plain_http: PlainHttp,
}

impl ListenerMode {
    /// Turn an accepted TCP stream into the stream HTTP is spoken over, with what the request
    /// handler needs to know about the connection. `None` when the TLS handshake fails or times
    /// out (logged at debug: scanners and bad clients are common and not the operator's fault).
    pub async fn accept(&self, stream: TcpStream) -> Option<(MaybeTls, ConnectionInfo)> {
        let Some(tls) = &self.tls else {
            let info = ConnectionInfo {
                tls: None,
                plain_http: self.plain_http,
            };
            return Some((MaybeTls::Plain(stream), info));
        };
        match tls.accept(stream).await {
            Ok((stream, session)) => Some((
                MaybeTls::Tls(Box::new(stream)),
                ConnectionInfo {
                    tls: Some(Arc::new(session)),
                    plain_http: PlainHttp::Serve,
                },
            )),
            Err(error) => {
                metrics::counter!("tollgate_tls_handshake_failures_total").increment(1);
                tracing::debug!(%error, "TLS handshake failed");
                None
            }
        }
    }
}

/// What the request handler learns about the connection a request came on; a request extension
/// set by the server, never from anything the client sends in HTTP.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    /// The TLS session, when the connection is TLS.
    pub tls: Option<Arc<TlsSession>>,
    /// What plain-HTTP requests get on this listener.
    pub plain_http: PlainHttp,
}

/// A completed TLS handshake.
#[derive(Debug, Clone)]
pub struct TlsSession {
    /// The SNI name the client asked for.
    pub server_name: Option<String>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The verified client certificate's identity (mTLS).
    pub client: Option<ClientIdentity>,
}

/// A listener's TLS settings; [`TlsListener::reload`] swaps them for new handshakes.
#[derive(Debug)]
pub struct TlsListener {
    config: ArcSwap<ServerConfig>,
    handshake_timeout_ms: AtomicU64,
}

impl TlsListener {
    /// Build from validated settings.
    pub fn new(tls: &ListenerTls) -> Result<Self, rustls::Error> {
        Ok(Self {
            config: ArcSwap::from_pointee(server_config(tls)?),
            handshake_timeout_ms: AtomicU64::new(millis(tls.handshake_timeout)),
        })
    }

    /// Prepare new settings without applying them (so a reload can fail before changing
    /// anything).
    pub fn prepare(tls: &ListenerTls) -> Result<Prepared, rustls::Error> {
        Ok(Prepared {
            config: Arc::new(server_config(tls)?),
            handshake_timeout_ms: millis(tls.handshake_timeout),
        })
    }

    /// Use `prepared` for every handshake from now on. Open connections keep their session.
    pub fn apply(&self, prepared: Prepared) {
        self.config.store(prepared.config);
        self.handshake_timeout_ms
            .store(prepared.handshake_timeout_ms, Ordering::Relaxed);
    }

    /// Run the server side of the handshake, bounded by the handshake timeout.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, TlsSession), io::Error> {
        let acceptor = TlsAcceptor::from(self.config.load_full());
        let timeout = Duration::from_millis(self.handshake_timeout_ms.load(Ordering::Relaxed));
        let stream = tokio::time::timeout(timeout, acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let (_, conn) = stream.get_ref();
        let session = TlsSession {
            server_name: conn.server_name().map(str::to_owned),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            client: conn
                .peer_certificates()
                .and_then(<[_]>::first)
                .map(ClientIdentity::from_der),
        };
        Ok((stream, session))
    }
}

/// Settings built by [`TlsListener::prepare`], applied by [`TlsListener::apply`].
#[derive(Debug)]
pub struct Prepared {
    config: Arc<ServerConfig>,
    handshake_timeout_ms: u64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// TLS 1.2 and 1.3 only (rustls implements nothing older), ALPN `h2` then `http/1.1`.
fn server_config(tls: &ListenerTls) -> Result<ServerConfig, rustls::Error> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])?;
    let builder = match (&tls.client_ca, tls.client_auth) {
        (Some(ca), ClientAuth::Optional | ClientAuth::Required) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(ca.roots.clone(), provider.clone());
            let verifier = match tls.client_auth {
                ClientAuth::Optional => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver::new(tls)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Picks the certificate for the SNI name: an exact DNS name, then a `*.` wildcard one label
/// deep, else the first certificate (also for clients that send no SNI).
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    fn new(tls: &ListenerTls) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for cert in &tls.certs {
            for name in &cert.material.names {
                let key = cert.material.certified.clone();
                match name.strip_prefix("*.") {
                    // The first certificate naming a host wins.
                    Some(parent) => wildcard.entry(parent.to_owned()).or_insert(key),
                    None => exact.entry(name.clone()).or_insert(key),
                };
            }
        }
        Self {
            exact,
            wildcard,
            default: tls.certs.first().map(|c| c.material.certified.clone()),
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(key) = self.exact.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(key) = self.wildcard.get(parent)
            {
                return Some(key.clone());
            }
        }
        self.default.clone()
    }
}

/// A client connection, TLS or plain.
#[derive(Debug)]
pub enum MaybeTls {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
