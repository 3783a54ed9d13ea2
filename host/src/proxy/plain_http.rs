//! `plain_http = "redirect" | "refuse"` on a listener without TLS: the request is answered
//! before routing and plugins, with a 308 to the HTTPS URL or a 403 (docs/tls.md).

use http::Request;

use super::error::ProxyError;
use super::host;
use crate::config::PlainHttp;
use crate::tls::ConnectionInfo;

/// `Ok` when the request may be served over this connection.
pub fn check<B>(conn: &ConnectionInfo, req: &Request<B>, path: &str) -> Result<(), ProxyError> {
    if conn.tls.is_some() {
        return Ok(());
    }
    match conn.plain_http {
        PlainHttp::Serve => Ok(()),
        PlainHttp::Refuse => Err(ProxyError::HttpsRequired),
        PlainHttp::Redirect { https_port } => {
            // The Location is built only from a host that parses as one, and the normalised
            // path: nothing the client sends is reflected verbatim.
            let host = host::request_host(req)
                .ok()
                .flatten()
                .map(|a| host::route_host(&a))
                .filter(|h| is_host(h))
                .ok_or(ProxyError::HttpsRequired)?;
            let port = match https_port {
                443 => String::new(),
                port => format!(":{port}"),
            };
            let query = req
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            Err(ProxyError::HttpsRedirect {
                location: format!("https://{host}{port}{path}{query}"),
            })
        }
    }
}

fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(plain_http: PlainHttp) -> ConnectionInfo {
        ConnectionInfo {
            tls: None,
            plain_http,
        }
    }

    fn location(req: Request<()>, path: &str, port: u16) -> Option<String> {
        match check(&conn(PlainHttp::Redirect { https_port: port }), &req, path) {
            Err(ProxyError::HttpsRedirect { location }) => Some(location),
            _ => None,
        }
    }

    #[test]
    fn redirects_keep_host_path_and_query() {
        let req = Request::builder()
            .uri("/a/../b?x=1")
            .header("host", "Shop.Example.com:8080")
            .body(())
            .unwrap_or_default();
        assert_eq!(
            location(req, "/b", 8443).as_deref(),
            Some("https://shop.example.com:8443/b?x=1")
        );
        let req = Request::builder()
            .uri("/")
            .header("host", "example.com")
            .body(())
            .unwrap_or_default();
        assert_eq!(
            location(req, "/", 443).as_deref(),
            Some("https://example.com/")
        );
    }

    #[test]
    fn odd_hosts_are_refused_not_reflected() {
        for host in ["evil.com@good.com", "", "a b"] {
            let req = Request::builder()
                .uri("/")
                .header("host", host)
                .body(())
                .unwrap_or_default();
            assert_eq!(location(req, "/", 443), None, "{host}");
        }
    }
}
