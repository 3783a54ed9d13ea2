//! The host a request is addressed to, checked once before routing (RFC 9112 §3.2, RFC 9110
//! §7.2, RFC 9113 §8.3.1). The host that routes is the host plugins see and the upstream gets
//! (`Host`, `X-Forwarded-Host`), so a host two parsers could read differently is refused (400
//! `bad_host`), never guessed at:
//! - an HTTP/1.1 or HTTP/2 request that names no host; more than one `Host` field (equal or not);
//! - a host with userinfo (`a@b`: `admin.example.com:1@www.example.com` is `www` to a URI parser
//!   and `admin` to a naive one), whitespace, a path, query or fragment, or characters no host
//!   name has;
//! - a port that is empty, not digits, 0 or above 65535;
//! - HTTP/2 `:authority` and `Host` that disagree.
//!
//! An HTTP/1 request in absolute form (`GET http://host/ HTTP/1.1`) routes by the URI's host, as
//! RFC 9112 §3.2.2 says; the upstream's `Host` is then that host.

use http::{Request, Version};

use super::error::ProxyError;

/// The checked host of a request, as written by the client (port included); `None` only for an
/// HTTP/1.0 request without `Host`.
pub fn request_host<B>(req: &Request<B>) -> Result<Option<String>, ProxyError> {
    let mut fields = req.headers().get_all(http::header::HOST).iter();
    let field = fields.next();
    if fields.next().is_some() {
        return Err(bad("more than one Host header"));
    }
    let field = field
        .map(|v| {
            v.to_str()
                .map_err(|_| bad("the Host header is not visible ASCII"))
                .and_then(|h| check_authority(h).map(|()| h))
        })
        .transpose()?;
    let uri = req.uri().authority().map(|a| a.as_str());
    if let Some(authority) = uri {
        check_authority(authority)?;
    }
    match (req.version(), uri, field) {
        // h2: `:authority` and `Host` name one host or the request is refused.
        (Version::HTTP_2, Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => Err(bad(
            "the :authority pseudo-header and the Host header disagree",
        )),
        // HTTP/1.1 absolute form still needs `Host` (RFC 9112 §3.2), but routes by the URI.
        (Version::HTTP_11, Some(_), None) => Err(bad("an HTTP/1.1 request needs a Host header")),
        (_, Some(a), _) => Ok(Some(a.to_owned())),
        (_, None, Some(h)) => Ok(Some(h.to_owned())),
        (Version::HTTP_09 | Version::HTTP_10, None, None) => Ok(None),
        (_, None, None) => Err(bad("the request names no host (Host or :authority)")),
    }
}

/// The host name used for routing: lower case, without port or trailing dot. `authority` is
/// one [`request_host`] accepted.
pub fn route_host(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inner, _)) => return format!("[{}]", inner.to_ascii_lowercase()),
            None => authority,
        },
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `host [":" port]` with a DNS-style name, an IPv4 address or a bracketed IPv6 address.
fn check_authority(authority: &str) -> Result<(), ProxyError> {
    if authority.is_empty() {
        return Err(bad("the host is empty"));
    }
    if authority.contains('@') {
        return Err(bad("the host has userinfo (`@`)"));
    }
    if authority
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad("the host contains whitespace or control characters"));
    }
    if authority.contains(['/', '\\', '?', '#']) {
        return Err(bad("the host contains a path, query or fragment"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inner, tail) = rest
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 host lacks its closing `]`"))?;
            if inner.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("the bracketed host is not an IPv6 address"));
            }
            match tail {
                "" => return Ok(()),
                _ => (
                    None,
                    tail.strip_prefix(':')
                        .ok_or_else(|| bad("junk after `]`"))?,
                ),
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (Some(host), port),
            None => (Some(authority), ""),
        },
    };
    if let Some(host) = host {
        let name_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if host.is_empty() || !host.bytes().all(name_char) {
            return Err(bad("the host is not a host name or address"));
        }
    }
    if host.is_some() && !authority.contains(':') {
        return Ok(());
    }
    let valid_port = port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    if valid_port {
        Ok(())
    } else {
        Err(bad("the port is not a number from 1 to 65535"))
    }
}

fn bad(reason: &str) -> ProxyError {
    ProxyError::BadHost(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h1(version: Version, hosts: &[&str]) -> Request<()> {
        let mut builder = Request::builder().uri("/").version(version);
        for h in hosts {
            builder = builder.header("host", *h);
        }
        builder.body(()).unwrap_or_default()
    }

    fn host(req: &Request<()>) -> Result<Option<String>, String> {
        request_host(req).map_err(|e| e.to_string())
    }

    #[test]
    fn good_hosts_pass() {
        for h in [
            "example.com",
            "Example.COM:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:443",
            "svc_a.internal.",
            "a:65535",
        ] {
            assert_eq!(
                host(&h1(Version::HTTP_11, &[h])),
                Ok(Some(h.to_owned())),
                "{h}"
            );
        }
        assert_eq!(host(&h1(Version::HTTP_10, &[])), Ok(None));
    }

    #[test]
    fn ambiguous_hosts_are_refused() {
        for hosts in [
            &[][..],
            &["a.com", "a.com"],
            &["a.com", "b.com"],
            &["a .com"],
            &["a.com/x"],
            &["a@b.com"],
            &["admin.example.com:1@www.example.com"],
            &["a.com:x"],
            &["a.com:"],
            &["a.com:0"],
            &["a.com:65536"],
            &["a.com:1:2"],
            &["[::1"],
            &["[zz]:80"],
            &["[::1]x"],
            &[""],
        ] {
            assert!(host(&h1(Version::HTTP_11, hosts)).is_err(), "{hosts:?}");
        }
    }

    #[test]
    fn h2_authority_and_host_must_agree() {
        let req = |host: Option<&str>| {
            let mut b = Request::builder()
                .uri("http://a.example.com/")
                .version(Version::HTTP_2);
            if let Some(h) = host {
                b = b.header("host", h);
            }
            b.body(()).unwrap_or_default()
        };
        assert_eq!(host(&req(None)), Ok(Some("a.example.com".into())));
        assert_eq!(
            host(&req(Some("A.example.com"))),
            Ok(Some("a.example.com".into()))
        );
        assert!(host(&req(Some("b.example.com"))).is_err());
    }

    #[test]
    fn route_hosts() {
        assert_eq!(route_host("API.Example.com:8080"), "api.example.com");
        assert_eq!(route_host("example.com."), "example.com");
        assert_eq!(route_host("[::1]:80"), "[::1]");
    }
}
