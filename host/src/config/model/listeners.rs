//! `[[listeners]]` and `[admin]`: client-facing listeners with their TLS and plain-HTTP
//! handling, and the admin listener with its bearer token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A client-facing listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Name, for logs.
    pub name: String,
    /// Address to bind.
    pub addr: SocketAddr,
    /// TLS termination (docs/tls.md).
    pub tls: Option<ListenerTls>,
    /// What plain-HTTP requests get on a listener without `tls`.
    pub plain_http: PlainHttp,
}

/// `[listeners.tls]`: certificates by SNI, optional client certificate verification.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// Certificates, the first being the default for clients without (or with an unknown) SNI.
    pub certs: Vec<TlsCertFiles>,
    /// CA bundle client certificates are verified against.
    pub client_ca: Option<crate::tls::CaBundle>,
    /// Whether clients must, may or must not present a certificate.
    pub client_auth: ClientAuth,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Every file read, for the file watcher.
    pub files: Vec<PathBuf>,
}

/// One certificate chain and key, read and checked.
#[derive(Debug, Clone)]
pub struct TlsCertFiles {
    /// The chain file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
    /// What they hold.
    pub material: crate::tls::CertKey,
}

/// `client_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A certificate is asked for; without one the request goes on with no identity, a bad
    /// one fails the handshake.
    Optional,
    /// The handshake fails without a certificate signed by the CA.
    Required,
}

/// `plain_http`: what a listener without TLS does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainHttp {
    /// Serve them (default).
    #[default]
    Serve,
    /// 308 to `https://HOST[:https_port]/path?query`.
    Redirect {
        /// The port in the `Location` (omitted when 443).
        https_port: u16,
    },
    /// 403 with a JSON body.
    Refuse,
}

/// The admin listener.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Address to bind. Anywhere but loopback needs a token (checked by `validate`).
    pub addr: SocketAddr,
    /// The bearer token every admin request must carry, when configured (always when `addr` is
    /// not loopback). Read from `token_env` or `token_file` at load; never has a default.
    pub token: Option<AdminToken>,
}

/// The admin API's bearer token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token; `None` when it is empty.
    pub fn new(token: String) -> Option<Self> {
        (!token.is_empty()).then_some(Self(token))
    }

    /// The secret itself (for the constant-time comparison in `admin`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}
