//! The portal and dashboard's defences over plain HTTP, as an attacker would probe them: forms
//! without the session's CSRF token are refused (403), the session id changes at sign-in (an id
//! planted before sign-in is worth nothing after), user-provided text is rendered escaped, a
//! developer cannot revoke or see another developer's keys, and a viewer's POST is refused.

use bytes::Bytes;
use http::Method;
use tollgate_tests::{Reply, client, send};

use crate::support::{ControlPlane, Database};

/// A browser-like client: one session cookie, kept from `Set-Cookie` (used by other portal tests too).
pub struct Browser<'a> {
    cp: &'a ControlPlane,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(cp: &'a ControlPlane) -> Self {
        Self { cp, cookie: None }
    }

    pub async fn request(&mut self, method: Method, path: &str, form: &[(&str, &str)]) -> Reply {
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

    pub async fn get(&mut self, path: &str) -> Reply {
        self.request(Method::GET, path, &[]).await
    }

    /// GET `page`, then POST `form` (plus the page's CSRF token) to `action`.
    pub async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> Reply {
        let csrf = csrf_of(&self.get(page).await);
        let mut fields = form.to_vec();
        fields.push(("csrf", &csrf));
        self.request(Method::POST, action, &fields).await
    }

    pub async fn sign_up(&mut self, name: &str, display: &str) -> Reply {
        let form = [
            ("username", name),
            ("display_name", display),
            ("password", "a long enough password"),
        ];
        self.submit("/portal/signup", "/portal/signup", &form).await
    }
}

/// `application/x-www-form-urlencoded` text of `form`.
pub fn form_body(form: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in form {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() {
                s.push(char::from(b));
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
    }
    s
}

/// The `tollgate_session` cookie a reply sets.
pub fn session_cookie(r: &Reply) -> Option<String> {
    r.headers.get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let rest = v.strip_prefix("tollgate_session=")?;
        Some(rest.split(';').next().unwrap_or("").to_owned())
    })
}

pub fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

pub fn csrf_of(r: &Reply) -> String {
    let body = text(r);
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_are_refused() {
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    let mut b = Browser::new(&cp);
    let page = b.get("/portal/signup").await;
    assert_eq!(page.status, 200);
    let set = page
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let form = [
        ("username", "eve"),
        ("display_name", "Eve"),
        ("password", "a long enough password"),
    ];
    let none = b.request(Method::POST, "/portal/signup", &form).await;
    assert_eq!(none.status, 403, "no token: {}", text(&none));
    assert!(text(&none).contains("CSRF"));
    let mut wrong = form.to_vec();
    wrong.push(("csrf", "0123456789abcdef"));
    assert_eq!(
        b.request(Method::POST, "/portal/signup", &wrong)
            .await
            .status,
        403
    );
    // The right token from another session (the attacker's own) does not work either.
    let mut attacker = Browser::new(&cp);
    let theirs = csrf_of(&attacker.get("/portal/signup").await);
    let mut cross = form.to_vec();
    cross.push(("csrf", &theirs));
    assert_eq!(
        b.request(Method::POST, "/portal/signup", &cross)
            .await
            .status,
        403
    );
    assert_eq!(
        b.sign_up("eve", "Eve").await.status,
        303,
        "with its own token"
    );
    println!("no token, a wrong token and another session's token: 403 each");
}

#[tokio::test]
async fn sign_in_replaces_the_session_id() {
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    // An id the server never issued is ignored: a fresh one is set.
    let mut planted = Browser::new(&cp);
    planted.cookie = Some("attacker-chosen-id".into());
    planted.get("/portal/signin").await;
    assert_ne!(planted.cookie.as_deref(), Some("attacker-chosen-id"));

    let mut b = Browser::new(&cp);
    b.get("/portal/signup").await;
    let before = b.cookie.clone().unwrap();
    assert_eq!(b.sign_up("ada", "Ada").await.status, 303);
    let after = b.cookie.clone().unwrap();
    assert_ne!(before, after, "sign-up signs in with a new id");
    // The pre-sign-in id (which an attacker could have planted) is not signed in.
    let mut fixated = Browser::new(&cp);
    fixated.cookie = Some(before);
    let r = fixated.get("/portal/keys").await;
    assert_eq!(r.status, 303, "the old id is not a signed-in session");

    let signout_csrf = csrf_of(&b.get("/portal/keys").await);
    b.request(Method::POST, "/portal/signout", &[("csrf", &signout_csrf)])
        .await;
    assert!(b.cookie.is_none(), "sign-out clears the cookie");
    b.get("/portal/signin").await;
    let anonymous = b.cookie.clone().unwrap();
    let r = b
        .submit(
            "/portal/signin",
            "/portal/signin",
            &[("username", "ada"), ("password", "a long enough password")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_ne!(
        b.cookie.as_deref(),
        Some(anonymous.as_str()),
        "sign-in rotates the id"
    );
    assert_eq!(b.get("/portal/keys").await.status, 200);
    let bad = b
        .submit(
            "/portal/signin",
            "/portal/signin",
            &[("username", "ada"), ("password", "wrong password!!")],
        )
        .await;
    assert_eq!(bad.status, 401);
}

#[tokio::test]
async fn user_provided_text_is_rendered_escaped() {
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    let xss = "<script>alert(1)</script>";
    let mut b = Browser::new(&cp);
    assert_eq!(b.sign_up("mallory", xss).await.status, 303);
    let page = text(&b.get("/portal/keys").await);
    assert!(!page.contains(xss), "raw script in the page");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );

    // A revision message (free text) in the dashboard.
    let operator = cp.token("ops", "operator").await;
    let dir = tempfile::tempdir().unwrap();
    let config = tollgate_tests::expand(super::portal_in_a_browser::CONFIG)
        .replace("UPSTREAM", "127.0.0.1:9");
    crate::support::apply(
        &cp,
        &operator,
        dir.path(),
        &config,
        "<img src=x onerror=alert(1)>",
    );
    let mut ops = Browser::new(&cp);
    let r = ops
        .submit(
            "/dashboard/signin",
            "/dashboard/signin",
            &[("token", &operator)],
        )
        .await;
    assert_eq!(r.status, 303);
    let page = text(&ops.get("/dashboard/revisions").await);
    assert!(!page.contains("<img src=x"), "raw tag in the page");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    let csp = ops.get("/dashboard").await.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

#[tokio::test]
async fn developers_cannot_touch_each_others_keys_and_viewers_cannot_change() {
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    let (mut a, mut b) = (Browser::new(&cp), Browser::new(&cp));
    assert_eq!(a.sign_up("alice", "Alice").await.status, 303);
    assert_eq!(b.sign_up("bob", "Bob").await.status, 303);
    let created = b.submit("/portal/keys", "/portal/keys", &[]).await;
    assert_eq!(created.status, 200);
    let admin = crate::support::ADMIN;
    let bobs = cp
        .api(Method::GET, "/v1/consumers/bob", admin, None)
        .await
        .json();
    let key_id = bobs["keys"][0]["id"].as_str().unwrap().to_owned();

    assert!(
        !text(&a.get("/portal/keys").await).contains(&key_id),
        "alice sees bob's key"
    );
    for action in ["revoke", "rotate"] {
        let r = a
            .submit(
                "/portal/keys",
                &format!("/portal/keys/{key_id}/{action}"),
                &[],
            )
            .await;
        assert_eq!(r.status, 404, "alice {action}s bob's key: {}", text(&r));
    }
    let bobs = cp
        .api(Method::GET, "/v1/consumers/bob", admin, None)
        .await
        .json();
    assert!(
        bobs["keys"][0]["revoked_ms"].is_null(),
        "bob's key is untouched"
    );
    assert_eq!(
        bobs["keys"].as_array().unwrap().len(),
        1,
        "no key was added by a rotation"
    );
    // Not signed in as a developer: the key pages send you to sign in.
    let mut stranger = Browser::new(&cp);
    assert_eq!(stranger.get("/portal/usage").await.status, 303);

    // A viewer signed in to the dashboard, with a valid CSRF token, still cannot roll back.
    let operator = cp.token("ops", "operator").await;
    let viewer = cp.token("auditor", "viewer").await;
    let dir = tempfile::tempdir().unwrap();
    let config = tollgate_tests::expand(super::portal_in_a_browser::CONFIG)
        .replace("UPSTREAM", "127.0.0.1:9");
    crate::support::apply(&cp, &operator, dir.path(), &config, "one");
    crate::support::apply(
        &cp,
        &operator,
        dir.path(),
        &format!("{config}\n# two\n"),
        "two",
    );
    let mut v = Browser::new(&cp);
    assert_eq!(
        v.submit(
            "/dashboard/signin",
            "/dashboard/signin",
            &[("token", &viewer)]
        )
        .await
        .status,
        303
    );
    let page = text(&v.get("/dashboard/revisions").await);
    assert!(
        !page.contains("Roll back") && !page.contains("Edit the config"),
        "{page}"
    );
    let r = v
        .submit(
            "/dashboard/revisions",
            "/dashboard/revisions/1/rollback",
            &[],
        )
        .await;
    assert_eq!(r.status, 403, "{}", text(&r));
    let current = cp
        .api(Method::GET, "/v1/revisions/current", admin, None)
        .await
        .json();
    assert_eq!(current["id"], 2, "nothing was rolled back");
    // A node token cannot sign in to the dashboard.
    let node = cp.token("fleet", "node").await;
    let mut n = Browser::new(&cp);
    assert_eq!(
        n.submit(
            "/dashboard/signin",
            "/dashboard/signin",
            &[("token", &node)]
        )
        .await
        .status,
        403
    );
}

/// An uploaded OpenAPI document is text on the reference page: tags in its descriptions, names
/// and server URLs are escaped, and no URL from it becomes a link.
#[tokio::test]
async fn api_documents_are_rendered_inert() {
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    let operator = cp.token("ops", "operator").await;
    let dir = tempfile::tempdir().unwrap();
    let config = tollgate_tests::expand(super::portal_in_a_browser::CONFIG)
        .replace("UPSTREAM", "127.0.0.1:9");
    crate::support::apply(&cp, &operator, dir.path(), &config, "routes");
    let script = "<script>alert(1)</script>";
    let img = "<img src=x onerror=alert(1)>";
    let doc = serde_json::json!({
        "openapi": "3.0.3",
        "info": {"title": img, "version": "1", "description": script},
        "servers": [{"url": "javascript:alert(1)", "description": img}],
        "paths": {format!("/x{script}"): {"get": {
            "summary": img, "description": script,
            "parameters": [{"name": img, "in": "query", "description": script, "schema": {"type": img}}],
            "responses": {"200": {"description": img, "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"<svg onload=alert(1)>": {"type": "string", "enum": [script], "description": img}}
            }}}}}
        }}}
    });
    let r = super::api_references_are_uploaded_and_rendered::put_doc(
        &cp,
        &operator,
        "api",
        doc.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let mut b = Browser::new(&cp);
    assert_eq!(b.sign_up("eve", "Eve").await.status, 303);
    let r = b.get("/portal/apis/api").await;
    assert_eq!(r.status, 200);
    let page = text(&r);
    for element in ["<script", "<img", "<svg", "href=\"javascript:"] {
        assert!(!page.contains(element), "{element} in the page:\n{page}");
    }
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(page.contains("&lt;svg onload=alert(1)&gt;"), "{page}");
    assert!(page.contains("<code>javascript:alert(1)</code>"), "{page}");
}
