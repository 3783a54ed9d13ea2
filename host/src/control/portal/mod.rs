//! The developer portal (`/portal`) and the operator dashboard (`/dashboard`), served by the
//! control plane as server-rendered HTML (maud templates, escaped by default) with one embedded
//! stylesheet and no script. Documented in docs/control-plane.md, "Portal and dashboard".
//!
//! Every request goes through [`handle`]: the session cookie is looked up, a POST's form is
//! read and its CSRF token checked against the session's before any handler runs, then
//! `developer` or `dashboard` answers. Errors become pages in one place ([`PageError`]).
//!
//! Layers: `session`, `page`, `chart`, `quota_use` and `analytics` (usage reported to the
//! store), `usage` (also reads gateways' meters), `schema`, `reference`, `plans`, `routes`,
//! then `developer` and `dashboard`, `fleet` and `revisions`, then this module. It uses the
//! control plane's store, roles and `ops`, never its JSON API, and never the proxy.

mod alerts;
mod analytics;
mod catalogue;
mod chart;
mod dashboard;
mod developer;
mod fleet;
mod page;
mod plans;
mod quota_use;
mod reference;
mod revisions;
mod routes;
mod schema;
mod session;
mod usage;

use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use maud::html;

use super::Control;
use super::http::{Answer, ApiError, read_body};
use page::{Area, Form};
use session::{Session, Sessions, Who};

/// The session cookie's name.
const COOKIE: &str = "tollgate_session";
/// Largest form accepted (a config edited in the dashboard).
const MAX_FORM_BYTES: usize = 1 << 20;

/// Who may create a developer account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUp {
    /// Anyone who reaches the portal.
    Open,
    /// Only with an invitation code (`POST /v1/invites`).
    Invite,
    /// Nobody (accounts are not created through the portal).
    Closed,
}

impl SignUp {
    /// `open`, `invite` or `closed`.
    pub fn parse(text: &str) -> Option<SignUp> {
        Some(match text {
            "open" => SignUp::Open,
            "invite" => SignUp::Invite,
            "closed" => SignUp::Closed,
            _ => return None,
        })
    }
}

/// The portal's settings and its sessions.
pub struct Portal {
    /// Who may sign up.
    pub signup: SignUp,
    /// Send the session cookie with `Secure` (always, except plain HTTP on a loopback address,
    /// where browsers would otherwise drop it).
    pub secure_cookie: bool,
    sessions: Sessions,
}

impl Portal {
    /// Settings for a control plane; no session yet.
    pub fn new(signup: SignUp, secure_cookie: bool) -> Portal {
        Portal {
            signup,
            secure_cookie,
            sessions: Sessions::default(),
        }
    }
}

/// Why a page could not be shown; [`PageError::answer`] is the only mapping to a response.
#[derive(Debug)]
pub enum PageError {
    /// A store, validation or permission error from the layers below.
    Api(ApiError),
    /// A POST without this session's CSRF token.
    Csrf,
    /// The page needs a signed-in developer or operator: go to that sign-in page.
    SignIn(Area),
    /// The signed-in person may not do this.
    Forbidden(String),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<super::store::StoreError> for PageError {
    fn from(e: super::store::StoreError) -> Self {
        PageError::Api(ApiError::Store(e))
    }
}

impl PageError {
    fn answer(self, area: Area, session: Option<&Session>) -> Answer {
        let (status, message) = match self {
            PageError::SignIn(Area::Portal) => return page::redirect("/portal/signin"),
            PageError::SignIn(Area::Dashboard) => return page::redirect("/dashboard/signin"),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form expired or did not come from this site (CSRF check failed). Reload the page and try again.".to_owned(),
            ),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            PageError::Api(e) => (api_status(&e), e.to_string()),
        };
        if status.is_server_error() {
            tracing::error!(%message, "portal page failed");
        }
        let body = html! { p.error role="alert" { (message) } };
        page::html_answer(
            status,
            page::layout(area, "Something went wrong", session, body),
        )
    }
}

fn api_status(e: &ApiError) -> StatusCode {
    match e {
        ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Method => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::InvalidConfig(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// One request's view of its session; a changed session id is sent back as a cookie.
pub struct Ctx<'a> {
    ctl: &'a Control,
    id: Option<String>,
    session: Option<Session>,
    new_cookie: Option<String>,
}

impl Ctx<'_> {
    /// The session, created (anonymous) when there is none: forms need its CSRF token.
    fn session(&mut self) -> Result<Session, PageError> {
        if let Some(s) = &self.session {
            return Ok(s.clone());
        }
        let (id, session) = self.ctl.portal.sessions.create(Who::Anonymous)?;
        self.set(id, session.clone());
        Ok(session)
    }

    fn set(&mut self, id: String, session: Session) {
        self.new_cookie = Some(id.clone());
        self.id = Some(id);
        self.session = Some(session);
    }

    /// Sign-in: a new session id for `who`; the old one is forgotten (no fixation).
    fn sign_in(&mut self, who: Who) -> Result<(), PageError> {
        let old = self.id.take().unwrap_or_default();
        let (id, session) = self.ctl.portal.sessions.rotate(&old, who)?;
        self.set(id, session);
        Ok(())
    }

    fn sign_out(&mut self) {
        if let Some(id) = self.id.take() {
            self.ctl.portal.sessions.remove(&id);
        }
        self.session = None;
        self.new_cookie = Some(String::new());
    }

    /// A message for the next page of this session.
    fn flash(&self, message: String) {
        if let Some(id) = &self.id {
            self.ctl.portal.sessions.flash(id, message);
        }
    }
}

/// Answer a request for a page or asset (anything outside `/v1/`).
pub async fn handle(ctl: &Control, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_owned();
    let area = if path.starts_with("/dashboard") {
        Area::Dashboard
    } else {
        Area::Portal
    };
    let id = session_cookie(&req);
    let session = id.as_deref().and_then(|id| ctl.portal.sessions.get(id));
    let mut cx = Ctx {
        ctl,
        id: session.as_ref().and(id),
        session,
        new_cookie: None,
    };
    let answer = match serve(&mut cx, req, &path).await {
        Ok(answer) => answer,
        Err(e) => e.answer(area, cx.session.as_ref()),
    };
    with_cookie(answer, &cx, ctl.portal.secure_cookie)
}

async fn serve(cx: &mut Ctx<'_>, req: Request<Incoming>, path: &str) -> Result<Answer, PageError> {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let form = if method == Method::POST {
        let body = read_body(req.into_body(), MAX_FORM_BYTES).await?;
        let form = Form::parse(&body);
        check_csrf(cx, &form)?;
        Some(form)
    } else {
        None
    };
    match (&method, segments.as_slice()) {
        (&Method::GET, ["assets", "portal.css"]) => {
            let mut answer = super::http::bytes("text/css; charset=utf-8", page::CSS.into());
            answer.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            Ok(answer)
        }
        (&Method::GET, [""]) => Ok(page::redirect("/portal")),
        (_, ["portal", rest @ ..]) => developer::route(cx, &method, rest, form.as_ref()).await,
        (_, ["dashboard", rest @ ..]) => {
            dashboard::route(cx, &method, rest, form.as_ref(), &query).await
        }
        _ => Err(ApiError::NotFound(format!("no page {path}")).into()),
    }
}

/// A POST must carry the CSRF token of the session it comes with.
fn check_csrf(cx: &Ctx<'_>, form: &Form) -> Result<(), PageError> {
    let sent = form.get("csrf").as_bytes();
    match &cx.session {
        Some(s) if !sent.is_empty() && same(sent, s.csrf.as_bytes()) => Ok(()),
        _ => Err(PageError::Csrf),
    }
}

/// Equal bytes, compared in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn session_cookie(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Add `Set-Cookie` when the session id changed (created, rotated at sign-in, or ended).
fn with_cookie(mut answer: Answer, cx: &Ctx<'_>, secure: bool) -> Answer {
    let Some(id) = &cx.new_cookie else {
        return answer;
    };
    let secure = if secure { "; Secure" } else { "" };
    let cookie = if id.is_empty() {
        format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
    } else {
        let age = session::IDLE.as_secs();
        format!("{COOKIE}={id}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict{secure}")
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        answer.headers_mut().append(header::SET_COOKIE, v);
    }
    answer
}
