//! An API version's reference page, drawn from its uploaded OpenAPI document (`/v1/apis`):
//! title, version and description, servers, then each path's operations with their summary,
//! description, parameters, request body and responses (schemas as nested field lists, see
//! `schema`). Every value from the document is spliced as text: maud escapes it, and no URL
//! from the document becomes a link (a `javascript:` server URL stays inert text).

use maud::{Markup, html};
use serde_json::Value;

use super::schema::{Drawer, plain, text, type_of};
use crate::control::Control;
use crate::control::http::ApiError;
use crate::control::openapi_doc::METHODS;

/// The page's title and body for the API version `name`.
pub async fn page(ctl: &Control, name: &str) -> Result<(String, Markup), ApiError> {
    let text_doc = ctl
        .store
        .api_doc(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("API {name:?} has no reference document")))?;
    let doc: Value = serde_json::from_str(&text_doc)
        .map_err(|e| ApiError::Internal(format!("the stored document does not parse: {e}")))?;
    let info = doc.get("info").unwrap_or(&Value::Null);
    let title = format!(
        "{} {}",
        text(info, "title").unwrap_or(name),
        text(info, "version").unwrap_or("")
    );
    let mut drawer = Drawer::new(&doc);
    let body = html! {
        p.note { "API " code { (name) } " · " a href="/portal" { "all APIs" } }
        @if let Some(d) = text(info, "description") { p.description { (d) } }
        (servers(&doc))
        @if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            @if paths.is_empty() { p { "This document describes no operations." } }
            @for (path, item) in paths { (path_item(&mut drawer, path, item)) }
        }
    };
    Ok((title.trim().to_owned(), body))
}

fn servers(doc: &Value) -> Markup {
    let list = doc
        .get("servers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    html! {
        @if !list.is_empty() {
            h2 { "Servers" }
            ul { @for s in &list { li { code { (text(s, "url").unwrap_or("")) } @if let Some(d) = text(s, "description") { " — " (d) } } } }
        }
    }
}

fn path_item(drawer: &mut Drawer<'_>, path: &str, item: &Value) -> Markup {
    let shared: Vec<Value> = item
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    html! {
        @for method in METHODS { @if let Some(op) = item.get(method).filter(|o| o.is_object()) {
            section.operation {
                h2 { span.badge { (method.to_uppercase()) } " " code { (path) } }
                @if op.get("deprecated").and_then(Value::as_bool) == Some(true) { p { span.badge.warn { "deprecated" } } }
                @if let Some(s) = text(op, "summary").or_else(|| text(item, "summary")) { p { strong { (s) } } }
                @if let Some(d) = text(op, "description").or_else(|| text(item, "description")) { p.description { (d) } }
                (parameters(drawer, &shared, op))
                @if let Some(body) = op.get("requestBody") { (request_body(drawer, body)) }
                @if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                    h3 { "Responses" }
                    dl { @for (status, r) in responses { (response(drawer, status, r)) } }
                }
            }
        } }
    }
}

fn parameters(drawer: &mut Drawer<'_>, shared: &[Value], op: &Value) -> Markup {
    let own = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let list: Vec<Value> = shared
        .iter()
        .chain(own.iter())
        .filter_map(|p| drawer.resolve(p).0.cloned())
        .collect();
    html! {
        @if !list.is_empty() {
            h3 { "Parameters" }
            div.scroll { table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "In" } th scope="col" { "Type" } th scope="col" { "Required" } th scope="col" { "Description" } } }
                tbody { @for p in &list { tr {
                    td { code { (text(p, "name").unwrap_or("")) } }
                    td { (text(p, "in").unwrap_or("")) }
                    td { (p.get("schema").map(|s| type_of(drawer.resolve(s).0.unwrap_or(s))).unwrap_or_default()) }
                    td { @if p.get("required").and_then(Value::as_bool) == Some(true) { "yes" } @else { "no" } }
                    td { (text(p, "description").unwrap_or("")) }
                } } }
            } }
        }
    }
}

fn request_body(drawer: &mut Drawer<'_>, body: &Value) -> Markup {
    let Some(body) = drawer.resolve(body).0.cloned() else {
        return html! { p.error { "The request body's reference does not resolve." } };
    };
    html! {
        h3 { "Request body" @if body.get("required").and_then(Value::as_bool) == Some(true) { " " span.badge.warn { "required" } } }
        @if let Some(d) = text(&body, "description") { p { (d) } }
        (content(drawer, &body))
    }
}

fn response(drawer: &mut Drawer<'_>, status: &str, r: &Value) -> Markup {
    let r = drawer.resolve(r).0.cloned().unwrap_or(Value::Null);
    html! {
        dt { code { (status) } }
        dd { (text(&r, "description").unwrap_or("")) (content(drawer, &r)) }
    }
}

/// Each media type of a body or response with its schema.
fn content(drawer: &mut Drawer<'_>, holder: &Value) -> Markup {
    let media = holder
        .get("content")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    html! {
        @for (kind, m) in &media {
            div.media {
                span.note { (kind) } " "
                @if let Some(schema) = m.get("schema") { (drawer.schema(schema)) }
                @if let Some(example) = m.get("example") { br; span.note { "example: " } code { (plain(example)) } }
            }
        }
    }
}
