//! The operator dashboard: signed in with a management token (admin, operator or viewer; node
//! tokens are refused), it shows the fleet (each gateway's last report), the config revisions
//! with side-by-side diffs, and lets admins and operators edit the config (validation errors at
//! their TOML paths) and roll back after a confirmation step. Viewers see no buttons, and every
//! change re-checks the role on the server (403), like the JSON API.

use http::{Method, StatusCode};
use maud::{Markup, html};

use super::page::{Area, Form, csrf, html_answer, layout, redirect};
use super::session::{Session, Who};
use super::{Ctx, PageError};
use crate::control::http::{Answer, ApiError};
use crate::control::ops;
use crate::control::roles::{Caller, Need, Role, hash_hex};

/// `/dashboard/...`.
pub async fn route(
    cx: &mut Ctx<'_>,
    method: &Method,
    rest: &[&str],
    form: Option<&Form>,
    query: &str,
) -> Result<Answer, PageError> {
    match (method, rest, form) {
        (&Method::GET, ["signin"], _) => signin_page(cx, None, StatusCode::OK),
        (&Method::POST, ["signin"], Some(f)) => signin(cx, f).await,
        (&Method::POST, ["signout"], _) => {
            cx.sign_out();
            Ok(redirect("/dashboard/signin"))
        }
        (&Method::GET, [] | [""], _) => {
            let (s, _) = operator(cx).await?;
            let body = super::fleet::page(cx.ctl).await?;
            Ok(page("Fleet", &s, body))
        }
        (&Method::GET, ["routes"], _) => {
            let (s, _) = operator(cx).await?;
            let body = super::routes::page(cx.ctl).await?;
            Ok(page("Routes and chains", &s, body))
        }
        (&Method::GET, ["alerts"], _) => {
            let (s, _) = operator(cx).await?;
            let body = super::alerts::page(cx.ctl).await?;
            Ok(page("Spike alerts", &s, body))
        }
        (&Method::GET, ["usage"], _) => {
            let (s, _) = operator(cx).await?;
            let choice = super::analytics::Choice::parse(query)?;
            let body = super::analytics::dashboard_page(cx.ctl, &choice).await?;
            Ok(page("Usage", &s, body))
        }
        (&Method::GET, ["revisions"], _) => {
            let (s, caller) = operator(cx).await?;
            let body = super::revisions::list(cx.ctl, &s, &caller).await?;
            Ok(page("Config revisions", &s, body))
        }
        (&Method::GET, ["revisions", a, "diff", b], _) => {
            let (s, caller) = operator(cx).await?;
            let body = super::revisions::diff(cx.ctl, &caller, number(a)?, number(b)?).await?;
            Ok(page(&format!("Revision {a} → {b}"), &s, body))
        }
        (&Method::GET, ["revisions", id, "rollback"], _) => {
            let (s, caller) = operator(cx).await?;
            caller.role.check(Need::Write, "roll back the config")?;
            let id = number(id)?;
            Ok(page(
                "Roll back?",
                &s,
                super::revisions::confirm(cx.ctl, &s, id).await?,
            ))
        }
        (&Method::POST, ["revisions", id, "rollback"], Some(_)) => {
            let (_, caller) = operator(cx).await?;
            caller.role.check(Need::Write, "roll back the config")?;
            let r = ops::rollback(cx.ctl, &caller.name, number(id)?, "").await?;
            cx.flash(format!(
                "Revision {} restores revision {id}; gateways apply it now.",
                r.id
            ));
            Ok(redirect("/dashboard/revisions"))
        }
        (&Method::GET, ["config"], _) => {
            let (s, caller) = operator(cx).await?;
            caller.role.check(Need::Write, "change the config")?;
            let current = cx
                .ctl
                .store
                .current()
                .await?
                .and_then(|r| r.config)
                .unwrap_or_default();
            Ok(page(
                "Edit the config",
                &s,
                super::revisions::editor(&s, &current, "", &[]),
            ))
        }
        (&Method::POST, ["config"], Some(f)) => {
            let (s, caller) = operator(cx).await?;
            caller.role.check(Need::Write, "change the config")?;
            apply(cx, &s, &caller, f).await
        }
        _ => Err(ApiError::NotFound("no such page".into()).into()),
    }
}

fn page(title: &str, session: &Session, body: Markup) -> Answer {
    html_answer(
        StatusCode::OK,
        layout(Area::Dashboard, title, Some(session), body),
    )
}

fn number(text: &str) -> Result<i64, PageError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("{text:?} is not a revision number")).into())
}

/// The signed-in operator, with a token that is still live (a revoked token ends the session).
async fn operator(cx: &mut Ctx<'_>) -> Result<(Session, Caller), PageError> {
    let Some(s) = cx.session.clone() else {
        return Err(PageError::SignIn(Area::Dashboard));
    };
    let Who::Operator {
        name,
        role,
        token_hash,
    } = &s.who
    else {
        return Err(PageError::SignIn(Area::Dashboard));
    };
    if cx.ctl.store.token_by_hash(token_hash).await?.is_none() {
        cx.sign_out();
        return Err(PageError::SignIn(Area::Dashboard));
    }
    let caller = Caller {
        name: name.clone(),
        role: *role,
    };
    Ok((s, caller))
}

fn signin_page(
    cx: &mut Ctx<'_>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Answer, PageError> {
    let s = cx.session()?;
    let body = html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/dashboard/signin" {
            (csrf(&s))
            label for="token" { "Management token" }
            input #token type="password" name="token" required autocomplete="off"
                aria-describedby="token-help";
            p.note #token-help { "An admin, operator or viewer token of this control plane (POST /v1/tokens)." }
            p { button type="submit" { "Sign in" } }
        }
    };
    Ok(html_answer(
        status,
        layout(Area::Dashboard, "Sign in", Some(&s), body),
    ))
}

async fn signin(cx: &mut Ctx<'_>, f: &Form) -> Result<Answer, PageError> {
    let hash = hash_hex(f.get("token").trim());
    let record = cx.ctl.store.token_by_hash(&hash).await?;
    let role = record.as_ref().and_then(|t| Role::parse(&t.role));
    match (record, role) {
        (Some(t), Some(role)) if role != Role::Node => {
            cx.sign_in(Who::Operator {
                name: t.name,
                role,
                token_hash: hash,
            })?;
            Ok(redirect("/dashboard"))
        }
        (Some(_), Some(_)) => signin_page(
            cx,
            Some("Node tokens cannot sign in to the dashboard."),
            StatusCode::FORBIDDEN,
        ),
        _ => signin_page(
            cx,
            Some("Unknown or revoked token."),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

async fn apply(
    cx: &mut Ctx<'_>,
    s: &Session,
    caller: &Caller,
    f: &Form,
) -> Result<Answer, PageError> {
    let (config, message) = (f.get("config"), f.get("message"));
    match ops::create_revision(cx.ctl, &caller.name, config, message).await {
        Ok(Some(r)) => {
            cx.flash(format!("Stored revision {}; gateways apply it now.", r.id));
            Ok(redirect("/dashboard/revisions"))
        }
        Ok(None) => {
            cx.flash("Nothing changed: that config is the current revision.".into());
            Ok(redirect("/dashboard/revisions"))
        }
        Err(ApiError::InvalidConfig(issues)) => {
            let body = super::revisions::editor(s, config, message, &issues);
            Ok(html_answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                layout(Area::Dashboard, "Edit the config", Some(s), body),
            ))
        }
        Err(e) => Err(e.into()),
    }
}
