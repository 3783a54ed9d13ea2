//! A browser-like client for the usage tests: one session cookie kept from `Set-Cookie`, forms
//! sent with the page's CSRF token, sign-in to the dashboard and the portal.

use bytes::Bytes;
use http::Method;
use tollgate_tests::{Reply, client, send};

use crate::portal_refuses_forgery_fixation_and_xss::{form_body, session_cookie};
use crate::support::{ADMIN, ControlPlane};

/// One session on a control plane.
pub struct Browser<'a> {
    /// The control plane it browses.
    pub cp: &'a ControlPlane,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    /// A browser with no session yet.
    pub fn new(cp: &'a ControlPlane) -> Self {
        Self { cp, cookie: None }
    }

    async fn request(&mut self, method: Method, path: &str, form: &[(&str, &str)]) -> Reply {
        let body: String = form_body(form);
        let cookie = self
            .cookie
            .as_ref()
            .map(|c| format!("tollgate_session={c}"));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(c) = &cookie {
            headers.push(("cookie", c));
        }
        let url = format!("{}{path}", self.cp.url());
        let r = send(&client(), method, &url, &headers, Bytes::from(body)).await;
        if let Some(id) = session_cookie(&r) {
            self.cookie = (!id.is_empty()).then_some(id);
        }
        r
    }

    /// GET a page: (status, body text).
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self.request(Method::GET, path, &[]).await;
        (
            r.status.as_u16(),
            String::from_utf8_lossy(&r.body).into_owned(),
        )
    }

    /// GET `page`, then POST `form` with the page's CSRF token to `action`; the status.
    pub async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> u16 {
        let (_, body) = self.get(page).await;
        let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        let csrf = body[at..].split('"').next().unwrap().to_owned();
        let mut fields = form.to_vec();
        fields.push(("csrf", &csrf));
        self.request(Method::POST, action, &fields)
            .await
            .status
            .as_u16()
    }

    /// Sign in to the dashboard with the bootstrap admin token.
    pub async fn operator(cp: &'a ControlPlane) -> Self {
        let mut b = Self::new(cp);
        let status = b
            .submit(
                "/dashboard/signin",
                "/dashboard/signin",
                &[("token", ADMIN)],
            )
            .await;
        assert_eq!(status, 303, "dashboard sign-in");
        b
    }

    /// Sign up to the portal (open sign-up) as `name`.
    pub async fn developer(cp: &'a ControlPlane, name: &str) -> Self {
        let mut b = Self::new(cp);
        let form = [
            ("username", name),
            ("display_name", name),
            ("password", "a long enough password"),
        ];
        let status = b.submit("/portal/signup", "/portal/signup", &form).await;
        assert_eq!(status, 303, "portal sign-up");
        b
    }
}

/// The text of the first element with `class="NAME"` after `anchor` in `html` (`anchor` "" for
/// the start).
pub fn class_text<'h>(html: &'h str, anchor: &str, name: &str) -> Option<&'h str> {
    let from = html.find(anchor)?;
    let rest = &html[from..];
    let at = rest.find(&format!("class=\"{name}\">"))? + name.len() + 9;
    rest[at..].split('<').next()
}
