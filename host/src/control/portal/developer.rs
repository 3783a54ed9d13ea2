//! The developer portal's pages: sign-up (open or by invitation), sign-in (Argon2id), the API
//! catalogue from the current revision's routes (with deprecation and sunset dates), the
//! developer's own keys (create: shown once; rotate; revoke) and their usage. A developer owns
//! exactly one consumer, named like the account: every key page checks the key is theirs.

use http::{Method, StatusCode};
use maud::{Markup, html};

use super::page::{Area, Form, csrf, html_answer, layout, redirect, when};
use super::session::{Session, Who};
use super::{Ctx, PageError, SignUp};
use crate::control::http::{Answer, ApiError};
use crate::control::ops;
use crate::control::roles::{hash_hex, random_secret};
use crate::control::store::now_ms;
use crate::control::store_people::{ApiKey, Consumer};
use crate::control::store_portal::{Developer, SignUpRefused};

/// Shortest password accepted.
const MIN_PASSWORD: usize = 10;
/// How long a rotated key keeps working (the developer swaps it in their clients meanwhile).
const ROTATE_GRACE_S: i64 = 24 * 3600;

/// `/portal/...`.
pub async fn route(
    cx: &mut Ctx<'_>,
    method: &Method,
    rest: &[&str],
    form: Option<&Form>,
) -> Result<Answer, PageError> {
    match (method, rest, form) {
        (&Method::GET, ["signup"], _) => signup_page(cx, None, StatusCode::OK),
        (&Method::POST, ["signup"], Some(f)) => signup(cx, f).await,
        (&Method::GET, ["signin"], _) => signin_page(cx, None, StatusCode::OK),
        (&Method::POST, ["signin"], Some(f)) => signin(cx, f).await,
        (&Method::POST, ["signout"], _) => {
            cx.sign_out();
            Ok(redirect("/portal/signin"))
        }
        (&Method::GET, [] | [""], _) => {
            let s = developer(cx)?;
            let body = super::catalogue::page(cx.ctl).await?;
            Ok(page("APIs", &s, body))
        }
        (&Method::GET, ["apis", name], _) => {
            let s = developer(cx)?;
            let (title, body) = super::reference::page(cx.ctl, name).await?;
            Ok(page(&title, &s, body))
        }
        (&Method::GET, ["plan"], _) => {
            let (s, name) = signed_in(cx)?;
            let body = super::plans::page(cx.ctl, &s, &name).await?;
            Ok(page("My plan", &s, body))
        }
        (&Method::POST, ["plan"], Some(f)) => {
            let (_, name) = signed_in(cx)?;
            let chosen = super::plans::choose(cx.ctl, &actor(&name), &name, f.get("plan")).await?;
            cx.flash(format!(
                "Your plan is now {chosen}: gateways apply it within 2 seconds."
            ));
            Ok(redirect("/portal/plan"))
        }
        (&Method::GET, ["keys"], _) => keys_page(cx).await,
        (&Method::POST, ["keys"], Some(_)) => {
            let (s, name) = signed_in(cx)?;
            let (record, key) =
                ops::issue_key(cx.ctl, &actor(&name), &name, None, "key.create").await?;
            Ok(page("Your new key", &s, new_key(&record, &key)))
        }
        (&Method::POST, ["keys", id, action], Some(_)) => key_action(cx, id, action).await,
        (&Method::GET, ["usage"], _) => {
            let (s, name) = signed_in(cx)?;
            let body = super::usage::usage_page(cx.ctl, &name).await?;
            Ok(page("My usage", &s, body))
        }
        _ => Err(ApiError::NotFound("no such page".into()).into()),
    }
}

fn page(title: &str, session: &Session, body: Markup) -> Answer {
    html_answer(
        StatusCode::OK,
        layout(Area::Portal, title, Some(session), body),
    )
}

/// The audit log's actor for a developer's own changes.
fn actor(username: &str) -> String {
    format!("developer:{username}")
}

/// The signed-in developer's session, or a redirect to sign in.
fn developer(cx: &Ctx<'_>) -> Result<Session, PageError> {
    signed_in(cx).map(|(s, _)| s)
}

fn signed_in(cx: &Ctx<'_>) -> Result<(Session, String), PageError> {
    match &cx.session {
        Some(s) => match &s.who {
            Who::Developer { username, .. } => Ok((s.clone(), username.clone())),
            _ => Err(PageError::SignIn(Area::Portal)),
        },
        None => Err(PageError::SignIn(Area::Portal)),
    }
}

fn signup_page(
    cx: &mut Ctx<'_>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Answer, PageError> {
    let signup = cx.ctl.portal.signup;
    let s = cx.session()?;
    let body = html! {
        @if signup == SignUp::Closed {
            p { "Sign-up is closed on this portal: ask the API's operators for an account." }
        } @else {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/portal/signup" {
                (csrf(&s))
                label for="username" { "User name" }
                input #username type="text" name="username" required autocomplete="username"
                    aria-describedby="username-help";
                p.note #username-help { "1 to 128 of A–Z a–z 0–9 . _ - @ : — it also names your consumer at the gateways." }
                label for="display_name" { "Display name" }
                input #display_name type="text" name="display_name" required maxlength="100";
                label for="password" { "Password" }
                input #password type="password" name="password" required minlength=(MIN_PASSWORD) autocomplete="new-password";
                @if signup == SignUp::Invite {
                    label for="invite" { "Invitation code" }
                    input #invite type="text" name="invite" required;
                }
                p { button type="submit" { "Create account" } }
            }
        }
    };
    Ok(html_answer(
        status,
        layout(Area::Portal, "Sign up", Some(&s), body),
    ))
}

async fn signup(cx: &mut Ctx<'_>, f: &Form) -> Result<Answer, PageError> {
    let signup = cx.ctl.portal.signup;
    if signup == SignUp::Closed {
        return Err(PageError::Forbidden(
            "sign-up is closed on this portal".into(),
        ));
    }
    let (username, display, password) = (
        f.get("username"),
        f.get("display_name").trim(),
        f.get("password"),
    );
    let refused = |cx: &mut Ctx<'_>, m: &str| signup_page(cx, Some(m), StatusCode::BAD_REQUEST);
    if let Err(e) = ops::check_name("user name", username) {
        return refused(cx, &e.to_string());
    }
    if display.is_empty() || display.chars().count() > 100 {
        return refused(cx, "The display name must be 1 to 100 characters.");
    }
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return refused(cx, "The password must be 10 to 1024 characters.");
    }
    let invite = (signup == SignUp::Invite).then(|| hash_hex(f.get("invite").trim()));
    let dev = Developer {
        id: random_secret("dev_", 8)?,
        username: username.to_owned(),
        display_name: display.to_owned(),
        password_hash: hash_password(password.to_owned()).await?,
        created_ms: now_ms(),
    };
    let consumer = Consumer {
        name: username.to_owned(),
        roles: vec!["developer".to_owned()],
        plan: None,
        created_ms: dev.created_ms,
    };
    match cx
        .ctl
        .store
        .add_developer(&dev, &consumer, invite.as_deref())
        .await?
    {
        Err(SignUpRefused::NameTaken) => return refused(cx, "That user name is taken."),
        Err(SignUpRefused::BadInvite) => {
            return refused(cx, "That invitation code is unknown or was used already.");
        }
        Ok(()) => {}
    }
    cx.ctl
        .store
        .audit(
            &actor(username),
            "developer.signup",
            &format!("consumer/{username}"),
            "",
        )
        .await?;
    cx.ctl.changed().await?;
    cx.sign_in(Who::Developer {
        username: dev.username,
        display_name: dev.display_name,
    })?;
    Ok(redirect("/portal/keys"))
}

fn signin_page(
    cx: &mut Ctx<'_>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Answer, PageError> {
    let s = cx.session()?;
    let body = html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/portal/signin" {
            (csrf(&s))
            label for="username" { "User name" }
            input #username type="text" name="username" required autocomplete="username";
            label for="password" { "Password" }
            input #password type="password" name="password" required autocomplete="current-password";
            p { button type="submit" { "Sign in" } }
        }
        p { "No account? " a href="/portal/signup" { "Sign up" } "." }
    };
    Ok(html_answer(
        status,
        layout(Area::Portal, "Sign in", Some(&s), body),
    ))
}

async fn signin(cx: &mut Ctx<'_>, f: &Form) -> Result<Answer, PageError> {
    let account = cx.ctl.store.developer(f.get("username")).await?;
    // Without an account a dummy hash is checked, so both failures take as long.
    let hash = account
        .as_ref()
        .map_or(DUMMY_HASH.to_owned(), |a| a.password_hash.clone());
    let ok = verify_password(f.get("password").to_owned(), hash).await? && account.is_some();
    match account {
        Some(a) if ok => {
            cx.sign_in(Who::Developer {
                username: a.username,
                display_name: a.display_name,
            })?;
            Ok(redirect("/portal"))
        }
        _ => signin_page(
            cx,
            Some("Wrong user name or password."),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// An Argon2id hash of a password nobody has, checked when the account does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$dG9sbGdhdGVkdW1teXNhbHQ$KzmV9Sqdn8OU7cF03lK3oE8HfqwVt1p5cKPZ1Dy3p7E";

/// Argon2id (the crate's defaults: 19 MiB, 2 passes) with a random salt, off the async threads.
async fn hash_password(password: String) -> Result<String, ApiError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use ring::rand::SecureRandom;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ApiError::Internal("no randomness available".into()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(e.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("password hashing: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn keys_page(cx: &mut Ctx<'_>) -> Result<Answer, PageError> {
    let (s, name) = signed_in(cx)?;
    let keys = cx.ctl.store.keys(Some(&name)).await?;
    let now = now_ms();
    let body = html! {
        p { "Send a key in the " code { "x-api-key" } " header. Gateways accept a new key, and refuse a revoked one, within 2 seconds." }
        form method="post" action="/portal/keys" { (csrf(&s)) button type="submit" { "Create a key" } }
        @if keys.is_empty() { p { "You have no keys yet." } } @else {
            div.scroll { table {
                caption.note { "Your keys (the key itself is shown once, when it is created)" }
                thead { tr { th scope="col" { "Key id" } th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "Actions" } } }
                tbody { @for k in &keys { (key_row(&s, k, now)) } }
            } }
        }
    };
    Ok(page("My keys", &s, body))
}

fn key_row(s: &Session, k: &ApiKey, now: i64) -> Markup {
    let live = k.revoked_ms.is_none() && k.not_after_ms.is_none_or(|t| t > now);
    html! {
        tr {
            td { code { (k.id) } }
            td { (when(k.created_ms)) }
            td {
                @if let Some(t) = k.revoked_ms { span.badge.bad { "revoked " (when(t)) } }
                @else if !live { span.badge.bad { "expired" } }
                @else if let Some(t) = k.not_after_ms { span.badge.warn { "valid until " (when(t)) } }
                @else { span.badge.good { "active" } }
            }
            td { @if k.revoked_ms.is_none() && live {
                form.inline method="post" action={ "/portal/keys/" (k.id) "/rotate" } {
                    (csrf(s)) button.secondary type="submit" aria-label={ "Rotate key " (k.id) } { "Rotate" } }
                " "
                form.inline method="post" action={ "/portal/keys/" (k.id) "/revoke" } {
                    (csrf(s)) button.danger type="submit" aria-label={ "Revoke key " (k.id) } { "Revoke" } }
            } }
        }
    }
}

fn new_key(record: &ApiKey, key: &str) -> Markup {
    html! {
        p { "Key " code { (record.id) } " is ready. Copy it now: it is not shown again (only its hash is kept)." }
        p.secret #new-key aria-label="Your new API key" { (key) }
        p { a href="/portal/keys" { "Back to my keys" } }
    }
}

async fn key_action(cx: &mut Ctx<'_>, id: &str, action: &str) -> Result<Answer, PageError> {
    let (s, name) = signed_in(cx)?;
    // Another developer's key is answered exactly like a missing one.
    let key = cx
        .ctl
        .store
        .key(id)
        .await?
        .filter(|k| k.consumer == name && k.revoked_ms.is_none())
        .ok_or_else(|| ApiError::NotFound(format!("you have no live key {id}")))?;
    match action {
        "revoke" => {
            ops::revoke_key(cx.ctl, &actor(&name), &key).await?;
            cx.flash(format!(
                "Key {id} is revoked: gateways refuse it within 2 seconds."
            ));
            Ok(redirect("/portal/keys"))
        }
        "rotate" => {
            let (record, new) =
                ops::rotate_key(cx.ctl, &actor(&name), &key, ROTATE_GRACE_S).await?;
            let body = html! {
                p { "Key " code { (id) } " keeps working for 24 hours, then only the new key does." }
                (new_key(&record, &new))
            };
            Ok(page("Your new key", &s, body))
        }
        _ => Err(ApiError::NotFound(format!("no key action {action:?}")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_and_the_dummy_hash_is_a_real_one() {
        let hash = hash_password("correct horse battery".into())
            .await
            .unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(matches!(
            verify_password("correct horse battery".into(), hash.clone()).await,
            Ok(true)
        ));
        assert!(matches!(
            verify_password("wrong".into(), hash).await,
            Ok(false)
        ));
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
