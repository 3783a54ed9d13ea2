//! Header rules: limits, hop-by-hop removal, the gateway's forwarding headers and the request id
//! (the host a request is addressed to is [`super::host`]'s).

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::header::{
    CONNECTION, HeaderName, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderValue};

use super::error::ProxyError;
use crate::config::Limits;

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-forwarded-for`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `x-forwarded-host`.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// `keep-alive` (legacy hop-by-hop).
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `proxy-connection` (legacy hop-by-hop).
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// `forwarded` (RFC 7239).
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// `x-real-ip`.
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers that describe one connection, never the message; named in RFC 9110 §7.6.1 plus the
/// legacy `Keep-Alive` and `Proxy-Connection`.
static HOP_BY_HOP: [&HeaderName; 9] = [
    &CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &TE,
    &TRAILER,
    &TRANSFER_ENCODING,
    &UPGRADE,
    &PROXY_AUTHORIZATION,
    &PROXY_AUTHENTICATE,
];

/// Forwarding headers a client could forge. The gateway drops them before the chain and sets its
/// own: plugins see the client address only through `client_ip` (worked out by
/// [`super::client`]), and the upstream gets the gateway's `X-Forwarded-*`.
static CLIENT_FORWARDING: [&HeaderName; 5] = [
    &X_FORWARDED_FOR,
    &X_FORWARDED_PROTO,
    &X_FORWARDED_HOST,
    &FORWARDED,
    &X_REAL_IP,
];

/// Refuse requests over the configured header count or total size (names plus values).
pub fn check_limits(headers: &HeaderMap, limits: &Limits) -> Result<(), ProxyError> {
    let count = headers.len();
    if count > limits.max_header_count {
        return Err(ProxyError::TooManyHeaders {
            count,
            limit: limits.max_header_count,
        });
    }
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > limits.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge {
            size,
            limit: limits.max_header_bytes,
        });
    }
    Ok(())
}

/// Remove hop-by-hop headers, including every header the `Connection` header names.
///
/// Runs before the gateway adds its own headers, so `Connection: x-forwarded-for` can only remove
/// the client's copy, never the gateway's. Runs on every request and response: it walks the names
/// present once (no parsing, no hashing) and touches the map only when one of them must go.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names the standard list removes anyway (`Connection: keep-alive`, the common case) are
    // skipped here, so a keep-alive exchange parses and allocates nothing.
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            let listed = HOP_BY_HOP
                .iter()
                .any(|h| token.eq_ignore_ascii_case(h.as_str()));
            if token.is_empty() || listed {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    remove_listed(headers, &HOP_BY_HOP);
    for name in named {
        headers.remove(name);
    }
}

/// Remove forwarding headers sent by the client (see [`CLIENT_FORWARDING`]).
pub fn strip_client_forwarding(headers: &mut HeaderMap) {
    remove_listed(headers, &CLIENT_FORWARDING);
}

/// Remove every header named in `doomed`, looking names up only when one is present and without
/// allocating (this runs twice per request).
fn remove_listed<const N: usize>(headers: &mut HeaderMap, doomed: &[&HeaderName; N]) {
    let mut found = [false; N];
    let mut any = false;
    for name in headers.keys() {
        if let Some(slot) = doomed
            .iter()
            .position(|d| *d == name)
            .and_then(|i| found.get_mut(i))
        {
            *slot = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    for (name, _) in doomed.iter().zip(found).filter(|(_, hit)| *hit) {
        headers.remove(*name);
    }
}

/// Set the gateway's forwarding headers. Called after the chain and after hop-by-hop removal, so
/// neither a client nor a `Connection` header can replace or remove them.
///
/// `X-Forwarded-For` is `chain, peer` when a trusted peer sent a chain, else just the peer.
pub fn set_forwarding(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted_chain: Option<&str>,
    host: Option<&str>,
) {
    // Written once into a buffer the header value keeps (`from_str` would copy it again).
    let mut xff = String::with_capacity(trusted_chain.map_or(0, |c| c.len() + 2) + 39);
    if let Some(chain) = trusted_chain {
        xff.push_str(chain);
        xff.push_str(", ");
    }
    // Writing to a `String` cannot fail.
    let _ = write!(xff, "{peer}");
    match HeaderValue::from_maybe_shared(Bytes::from(xff)) {
        Ok(value) => {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
        Err(_) => {
            headers.remove(&X_FORWARDED_FOR);
        }
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    headers.remove(&X_FORWARDED_HOST);
    if let Some(value) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(X_FORWARDED_HOST.clone(), value);
    }
}

/// The request id, as text and as the header value that the plugins' view, the upstream request
/// and the response carry: the client's `x-request-id` when it is a short printable token, else a
/// new random one. Either way the value is made once; its clones share it.
pub fn request_id(headers: &HeaderMap) -> (Arc<str>, HeaderValue) {
    let supplied = headers.get(&X_REQUEST_ID).and_then(|v| {
        let token = v.to_str().ok()?;
        let printable = token.bytes().all(|b| b.is_ascii_graphic());
        (!token.is_empty() && token.len() <= 128 && printable)
            .then(|| (Arc::from(token), v.clone()))
    });
    supplied.unwrap_or_else(|| {
        let hex = new_request_id();
        // Hex digits are a valid header value.
        let value = HeaderValue::from_maybe_shared(Bytes::from_owner(hex))
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        (Arc::from(String::from_utf8_lossy(&hex)), value)
    })
}

/// A random 128-bit id in hex. SipHash with per-process random keys over a counter: unique and
/// unpredictable enough for correlation, without another dependency (it is not a secret).
fn new_request_id() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEYS: (RandomState, RandomState) = (RandomState::new(), RandomState::new());
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let (a, b) = KEYS.with(|(k1, k2)| (k1.hash_one(n), k2.hash_one(n)));
    let mut hex = [0; 32];
    crate::telemetry::write_hex(&mut hex, (u128::from(a) << 64) | u128::from(b));
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut headers = map(&[
            ("connection", "close, x-secret"),
            ("connection", "x-other"),
            ("connection", "Keep-Alive, , X-Upper"),
            ("keep-alive", "timeout=5"),
            ("x-upper", "4"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("x-kept", "3"),
        ]);
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-kept"], "3");
    }

    #[test]
    fn forwarding_headers_are_the_gateways() {
        let mut headers = map(&[("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6")]);
        strip_client_forwarding(&mut headers);
        set_forwarding(
            &mut headers,
            IpAddr::from([10, 0, 0, 1]),
            None,
            Some("example.com"),
        );
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "example.com");
        assert!(headers.get("forwarded").is_none());
        // From a trusted peer, its chain is kept and the peer appended.
        set_forwarding(
            &mut headers,
            IpAddr::from([10, 0, 0, 1]),
            Some("1.2.3.4, 10.0.0.9"),
            None,
        );
        assert_eq!(headers["x-forwarded-for"], "1.2.3.4, 10.0.0.9, 10.0.0.1");
    }

    #[test]
    fn limits_count_and_size() {
        let limits = Limits {
            max_header_count: 2,
            max_header_bytes: 10,
            ..Limits::default()
        };
        assert!(check_limits(&map(&[("a", "1"), ("b", "2")]), &limits).is_ok());
        assert!(matches!(
            check_limits(&map(&[("a", "1"), ("b", "2"), ("c", "3")]), &limits),
            Err(ProxyError::TooManyHeaders { count: 3, .. })
        ));
        assert!(matches!(
            check_limits(&map(&[("a", "0123456789")]), &limits),
            Err(ProxyError::HeadersTooLarge { size: 11, .. })
        ));
    }

    #[test]
    fn request_ids() {
        let (id, value) = request_id(&map(&[("x-request-id", "abc-123")]));
        assert_eq!((&*id, value.as_bytes()), ("abc-123", &b"abc-123"[..]));
        let (generated, value) = request_id(&map(&[("x-request-id", "has space")]));
        assert_eq!(generated.len(), 32);
        assert_eq!(value.as_bytes(), generated.as_bytes());
        assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(
            request_id(&HeaderMap::new()).0,
            request_id(&HeaderMap::new()).0
        );
    }
}
