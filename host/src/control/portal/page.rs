//! What every page shares: the layout (header, navigation, who is signed in), the embedded
//! stylesheet, the CSRF field of every form, form bodies, and the HTML answers with their
//! security headers. Pages are `maud` templates: every value spliced in is HTML-escaped unless
//! it is wrapped in `PreEscaped`, which only the chart code uses, for SVG it builds from numbers
//! and escaped labels.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use maud::{DOCTYPE, Markup, html};

use super::super::http::Answer;
use super::session::{Session, Who};

/// The stylesheet, served at `/assets/portal.css` (no CDN, nothing fetched from elsewhere).
pub const CSS: &str = include_str!("assets/portal.css");

/// Which part of the site a page belongs to (its navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The developer portal.
    Portal,
    /// The operator dashboard.
    Dashboard,
}

/// A full page: layout around `body`.
pub fn layout(area: Area, title: &str, session: Option<&Session>, body: Markup) -> Markup {
    let who = session.map(|s| &s.who);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tollgate" }
                link rel="stylesheet" href="/assets/portal.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    strong { @match area { Area::Portal => "Tollgate developer portal", Area::Dashboard => "Tollgate dashboard" } }
                    nav aria-label="Main" { (nav(area, who)) }
                    @if let Some(s) = session { (whoami(area, s)) }
                }
                main #main {
                    h1 { (title) }
                    @if let Some(flash) = session.and_then(|s| s.flash.as_deref()) {
                        p.flash role="status" { (flash) }
                    }
                    (body)
                }
            }
        }
    }
}

fn nav(area: Area, who: Option<&Who>) -> Markup {
    let signed_in = matches!(who, Some(Who::Developer { .. } | Who::Operator { .. }));
    html! {
        @match (area, signed_in) {
            (Area::Portal, true) => {
                a href="/portal" { "APIs" } a href="/portal/keys" { "My keys" } a href="/portal/usage" { "My usage" } a href="/portal/plan" { "My plan" }
            }
            (Area::Portal, false) => {
                a href="/portal/signin" { "Sign in" } a href="/portal/signup" { "Sign up" }
            }
            (Area::Dashboard, true) => {
                a href="/dashboard" { "Fleet" } a href="/dashboard/usage" { "Usage" } a href="/dashboard/routes" { "Routes" } a href="/dashboard/revisions" { "Config revisions" } a href="/dashboard/alerts" { "Alerts" }
            }
            (Area::Dashboard, false) => { a href="/dashboard/signin" { "Sign in" } }
        }
    }
}

fn whoami(area: Area, session: &Session) -> Markup {
    let action = match area {
        Area::Portal => "/portal/signout",
        Area::Dashboard => "/dashboard/signout",
    };
    html! {
        @match &session.who {
            Who::Anonymous => {}
            Who::Developer { display_name, username } => {
                span.who { span { (display_name) " (" (username) ")" } (signout(action, session)) }
            }
            Who::Operator { name, role, .. } => {
                span.who { span { (name) " · " (role.name()) } (signout(action, session)) }
            }
        }
    }
}

fn signout(action: &str, session: &Session) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(session)) button.secondary type="submit" { "Sign out" }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// An HTML answer with the headers every page has: a strict Content-Security-Policy (no inline
/// script or style, nothing from elsewhere), no framing, no sniffing, not cached.
pub fn html_answer(status: StatusCode, page: Markup) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(page.into_string())));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `303 See Other` to `location` (after a form: the browser then GETs it).
pub fn redirect(location: &str) -> Answer {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// A form body (`application/x-www-form-urlencoded`).
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Parse a body.
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// A field's value ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A time in Unix ms as `YYYY-MM-DD HH:MM UTC`.
pub fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).map_or_else(
        |_| ms.to_string(),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        },
    )
}
