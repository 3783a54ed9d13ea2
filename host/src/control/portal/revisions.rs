//! The dashboard's revision pages: the list (author, message, time), a side-by-side diff of
//! any two revisions, the rollback confirmation, and the config editor with validation errors
//! at their TOML paths. Secrets in configs are masked for viewers, as in the JSON API.

use maud::{Markup, html};
use similar::{ChangeTag, TextDiff};

use super::page::{csrf, when};
use super::session::Session;
use crate::config::ConfigIssue;
use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::mask::mask_config;
use crate::control::roles::{Caller, Need, Role};

fn can_write(caller: &Caller) -> bool {
    caller.role.check(Need::Write, "").is_ok()
}

/// Every revision, newest first; buttons only for roles that may change the config.
pub async fn list(ctl: &Control, _s: &Session, caller: &Caller) -> Result<Markup, ApiError> {
    let revisions = ctl.store.revisions().await?;
    let newest = revisions.first().map(|r| r.id);
    let write = can_write(caller);
    Ok(html! {
        @if write { p { a href="/dashboard/config" { "Edit the config (a new revision)" } } }
        @else { p.note { "Your role (" (caller.role.name()) ") can read revisions but not change them." } }
        @if revisions.is_empty() { p { "No revision yet." } } @else {
            div.scroll { table #revisions {
                thead { tr { th scope="col" { "Revision" } th scope="col" { "When" } th scope="col" { "Author" }
                    th scope="col" { "Message" } th scope="col" { "Actions" } } }
                tbody { @for r in &revisions {
                    tr {
                        th scope="row" { (r.id) @if Some(r.id) == newest { " " span.badge.good { "current" } } }
                        td { (when(r.created_ms)) }
                        td { (r.author) }
                        td { (r.message) @if let Some(o) = r.rollback_of { br; span.note { "restores revision " (o) } } }
                        td {
                            @if r.id > 1 { a href={ "/dashboard/revisions/" (r.id - 1) "/diff/" (r.id) } { "Changes" } }
                            @if write && Some(r.id) != newest {
                                " · " a href={ "/dashboard/revisions/" (r.id) "/rollback" } { "Roll back to " (r.id) "…" }
                            }
                        }
                    }
                } }
            } }
        }
    })
}

async fn config(ctl: &Control, caller: &Caller, id: i64) -> Result<String, ApiError> {
    let text = ctl
        .store
        .revision(id)
        .await?
        .and_then(|r| r.config)
        .ok_or_else(|| ApiError::NotFound(format!("no revision {id}")))?;
    Ok(if caller.role == Role::Viewer {
        mask_config(&text)
    } else {
        text
    })
}

/// The diff page's body: revision `a` on the left, `b` on the right.
pub async fn diff(ctl: &Control, caller: &Caller, a: i64, b: i64) -> Result<Markup, ApiError> {
    let (old, new) = (config(ctl, caller, a).await?, config(ctl, caller, b).await?);
    Ok(side_by_side(&old, &new, a, b))
}

/// Two columns, changed lines paired up, removed lines red on the left, added green on the right.
pub fn side_by_side(old: &str, new: &str, a: i64, b: i64) -> Markup {
    let diff = TextDiff::from_lines(old, new);
    type Line = (Option<usize>, String);
    let mut rows: Vec<(Option<Line>, Option<Line>, bool)> = Vec::new();
    let (mut dels, mut ins): (Vec<Line>, Vec<Line>) = (Vec::new(), Vec::new());
    let flush = |rows: &mut Vec<_>, dels: &mut Vec<Line>, ins: &mut Vec<Line>| {
        let n = dels.len().max(ins.len());
        let (mut d, mut i) = (dels.drain(..), ins.drain(..));
        for _ in 0..n {
            rows.push((d.next(), i.next(), true));
        }
    };
    for change in diff.iter_all_changes() {
        let text = change.value().trim_end_matches('\n').to_owned();
        match change.tag() {
            ChangeTag::Delete => dels.push((change.old_index(), text)),
            ChangeTag::Insert => ins.push((change.new_index(), text)),
            ChangeTag::Equal => {
                flush(&mut rows, &mut dels, &mut ins);
                rows.push((
                    Some((change.old_index(), text.clone())),
                    Some((change.new_index(), text)),
                    false,
                ));
            }
        }
    }
    flush(&mut rows, &mut dels, &mut ins);
    let cell = |line: &Option<Line>, changed: bool, class: &str| {
        html! {
            @match line {
                Some((n, t)) => {
                    td.n { (n.map_or(0, |n| n + 1)) }
                    td class=(if changed { class } else { "" }) { (t) }
                }
                None => { td.n {} td {} }
            }
        }
    };
    html! {
        @if old == new { p { "The two revisions have the same config." } }
        div.scroll { table.diff #diff {
            thead { tr { th.n {} th scope="col" { "Revision " (a) } th.n {} th scope="col" { "Revision " (b) } } }
            tbody { @for (l, r, changed) in &rows {
                tr { (cell(l, *changed, "del")) (cell(r, *changed, "ins")) }
            } }
        } }
    }
}

/// The rollback confirmation: what would change, and one button.
pub async fn confirm(ctl: &Control, s: &Session, id: i64) -> Result<Markup, ApiError> {
    let target = ctl
        .store
        .revision(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no revision {id}")))?;
    let current = ctl.store.current().await?;
    let now = current
        .as_ref()
        .and_then(|r| r.config.clone())
        .unwrap_or_default();
    let now_id = current.map_or(0, |r| r.id);
    Ok(html! {
        p { "Roll back to revision " strong { (id) } " (" (target.author) ": “" (target.message) "”, " (when(target.created_ms)) ")? "
            "Its config is checked again and stored as a new revision; every gateway applies it at once." }
        form method="post" action={ "/dashboard/revisions/" (id) "/rollback" } {
            (csrf(s))
            button.danger type="submit" { "Yes, roll back to revision " (id) }
            " " a href="/dashboard/revisions" { "Cancel" }
        }
        h2 { "What changes" }
        (side_by_side(&now, target.config.as_deref().unwrap_or(""), now_id, id))
    })
}

/// The config editor, with the issues of a refused attempt at their TOML paths.
pub fn editor(s: &Session, config: &str, message: &str, issues: &[ConfigIssue]) -> Markup {
    html! {
        @if !issues.is_empty() {
            div.error role="alert" #issues {
                p { "The config is invalid; nothing was stored:" }
                ul { @for i in issues { li { code { (i.path) } ": " (i.message) } } }
            }
        }
        form method="post" action="/dashboard/config" {
            (csrf(s))
            label for="config" { "Config (TOML, validated like " code { "tollgate check" } ")" }
            textarea #config name="config" rows="24" spellcheck="false" { (config) }
            label for="message" { "Why (kept with the revision)" }
            input #message type="text" name="message" value=(message);
            p { button type="submit" { "Validate and store" } " " a href="/dashboard/revisions" { "Cancel" } }
        }
    }
}
