//! What a browser could do to a loopback admin API, refused before any endpoint runs:
//! - **DNS rebinding**: a page on `evil.example` rebinds its name to 127.0.0.1 and reads
//!   `/admin/config` as same-origin. Without a token, a request is served only when its host
//!   (`Host`, or HTTP/2 `:authority`) is the admin address or a loopback name (`localhost`,
//!   `*.localhost`, `127.0.0.0/8`, `[::1]`); anything else gets 403 `forbidden_host`.
//! - **Cross-site requests**: a page anywhere can make the browser send a form POST (no
//!   preflight) to `http://127.0.0.1:9901/admin/reload`. A POST is refused (403
//!   `cross_site_request`) when its `Origin` is not the admin API's own origin or
//!   `Sec-Fetch-Site` says another site sent it, and (415 `unsupported_media_type`) when it
//!   carries a body type a form can send (`application/x-www-form-urlencoded`,
//!   `multipart/form-data`, `text/plain`): use `Content-Type: application/json`, or none.
//!   Command-line clients (curl, scripts) send no `Origin` and are served as before.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

/// `Some(403)` when no token is configured and the request's host is neither the admin
/// address nor a loopback name.
pub fn refuse_foreign_host<B>(
    req: &Request<B>,
    admin: Option<SocketAddr>,
) -> Option<Response<Full<Bytes>>> {
    let host = request_host(req);
    if host.as_deref().is_some_and(|h| allowed_host(h, admin)) {
        return None;
    }
    Some(super::json_response(
        StatusCode::FORBIDDEN,
        &json!({
            "error": "forbidden_host",
            "message": "without an admin token the admin API answers only requests addressed to \
                        its own address or a loopback name (Host), to defeat DNS rebinding",
        }),
    ))
}

/// `Some(403 or 415)` for a POST a web page in another origin could have sent.
pub fn refuse_cross_site<B>(req: &Request<B>) -> Option<Response<Full<Bytes>>> {
    if req.method() != Method::POST {
        return None;
    }
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let fetch_site = header(http::HeaderName::from_static("sec-fetch-site"));
    let foreign_fetch = fetch_site.is_some_and(|s| !matches!(s, "same-origin" | "none"));
    let own_origin = request_host(req).map(|h| format!("http://{h}"));
    let foreign_origin = match (header(header::ORIGIN), own_origin) {
        (None, _) => false,
        (Some(origin), Some(own)) => !origin.eq_ignore_ascii_case(&own),
        (Some(_), None) => true,
    };
    if foreign_fetch || foreign_origin {
        return Some(super::json_response(
            StatusCode::FORBIDDEN,
            &json!({
                "error": "cross_site_request",
                "message": "the admin API refuses POSTs sent by a page from another origin",
            }),
        ));
    }
    let media = header(header::CONTENT_TYPE).map(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match media.as_deref() {
        None | Some("application/json") => None,
        Some(other) => Some(super::json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &json!({
                "error": "unsupported_media_type",
                "message": format!(
                    "POST to the admin API takes `Content-Type: application/json` or none, not `{other}`"
                ),
            }),
        )),
    }
}

/// The host the request names: HTTP/2 `:authority` (or an absolute URI), else `Host` (only
/// when there is exactly one).
fn request_host<B>(req: &Request<B>) -> Option<String> {
    if let Some(authority) = req.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next()?;
    if hosts.next().is_some() {
        return None;
    }
    host.to_str().ok().map(str::to_owned)
}

/// `host[:port]` naming the admin address or a loopback name. Any port: a rebinding page
/// names its own host, and a tunnel (`ssh -L 8080:127.0.0.1:9901`) keeps `localhost`.
fn allowed_host(authority: &str, admin: Option<SocketAddr>) -> bool {
    if authority.contains('@') {
        return false;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (!h.contains(':') || h.ends_with(']')) => (h, Some(p)),
        _ => (authority, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return false;
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || admin.is_some_and(|a| a.ip() == ip),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri("/admin/reload");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap_or_default()
    }

    const ADMIN: &str = "127.0.0.1:9901";

    fn admin() -> Option<SocketAddr> {
        ADMIN.parse().ok()
    }

    #[test]
    fn loopback_names_and_the_admin_address_pass() {
        for host in [
            "127.0.0.1:9901",
            "127.0.0.1",
            "localhost:9901",
            "LOCALHOST",
            "api.localhost:9901",
            "[::1]:9901",
            "127.1.2.3:9901",
        ] {
            let r = req(Method::GET, &[("host", host)]);
            assert!(refuse_foreign_host(&r, admin()).is_none(), "{host}");
        }
    }

    #[test]
    fn other_hosts_are_refused() {
        for host in [
            "evil.example:9901",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1:x",
            "localhost@evil.example",
            "10.0.0.1:9901",
        ] {
            let r = req(Method::GET, &[("host", host)]);
            assert!(refuse_foreign_host(&r, admin()).is_some(), "{host}");
        }
        let none = req(Method::GET, &[]);
        assert!(refuse_foreign_host(&none, admin()).is_some());
        let two = req(Method::GET, &[("host", ADMIN), ("host", ADMIN)]);
        assert!(refuse_foreign_host(&two, admin()).is_some());
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let status = |headers: &[(&str, &str)]| {
            refuse_cross_site(&req(Method::POST, headers)).map(|r| r.status().as_u16())
        };
        assert_eq!(status(&[("host", ADMIN)]), None);
        assert_eq!(
            status(&[("host", ADMIN), ("content-type", "application/json")]),
            None
        );
        assert_eq!(
            status(&[("host", ADMIN), ("origin", "http://127.0.0.1:9901")]),
            None
        );
        assert_eq!(
            status(&[("host", ADMIN), ("origin", "http://evil.example")]),
            Some(403)
        );
        assert_eq!(
            status(&[("host", ADMIN), ("sec-fetch-site", "cross-site")]),
            Some(403)
        );
        assert_eq!(
            status(&[("host", ADMIN), ("content-type", "text/plain")]),
            Some(415)
        );
        assert_eq!(
            status(&[
                ("host", ADMIN),
                ("content-type", "application/x-www-form-urlencoded")
            ]),
            Some(415)
        );
        assert!(refuse_cross_site(&req(Method::GET, &[("origin", "http://evil")])).is_none());
    }
}
