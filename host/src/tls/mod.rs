//! TLS with rustls (ring provider): termination on listeners ([`listener`]), the client
//! certificate identity plugins see ([`identity`]), and certificates and keys read from PEM
//! files ([`material`]). The upstream side is `proxy::upstream::connector`. Operator docs: `docs/tls.md`.

pub mod identity;
pub mod listener;
pub mod material;

pub use identity::{CONTEXT_FINGERPRINT, CONTEXT_SAN, CONTEXT_SUBJECT, ClientIdentity};
pub use listener::{ConnectionInfo, ListenerMode, MaybeTls, TlsListener, TlsSession};
pub use material::{CaBundle, CertKey};
