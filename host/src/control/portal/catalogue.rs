//! The API catalogue: the current revision's routes, read from its TOML (`[[routes]]`: name,
//! hosts, path or path prefix, methods, and `deprecated` / `sunset` / `deprecation_link`), so
//! a developer sees each API version and when a deprecated one goes away, and a link to the
//! version's API reference when an OpenAPI document was uploaded for it (`reference`).

use maud::{Markup, html};

use crate::control::Control;
use crate::control::http::ApiError;

/// One route as the catalogue shows it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Route name.
    pub name: String,
    /// `path` or `path_prefix` followed by `*`.
    pub path: String,
    /// Methods, or empty for any.
    pub methods: Vec<String>,
    /// Host names, or empty for any.
    pub hosts: Vec<String>,
    /// `deprecated` as written.
    pub deprecated: Option<String>,
    /// `sunset` as written.
    pub sunset: Option<String>,
    /// `deprecation_link`.
    pub link: Option<String>,
    /// Plugins in chain order.
    pub chain: Vec<String>,
}

/// The routes of a config text (which the control plane validated when it was stored).
pub fn entries(config: &str) -> Vec<Entry> {
    let Ok(doc) = config.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(routes) = doc.get("routes").and_then(toml::Value::as_array) else {
        return Vec::new();
    };
    let text = |v: Option<&toml::Value>| match v {
        Some(toml::Value::String(s)) => Some(s.clone()),
        Some(toml::Value::Datetime(d)) => Some(d.to_string()),
        _ => None,
    };
    let list = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    routes
        .iter()
        .filter_map(toml::Value::as_table)
        .map(|r| Entry {
            name: text(r.get("name")).unwrap_or_default(),
            path: text(r.get("path"))
                .or_else(|| text(r.get("path_prefix")).map(|p| format!("{p}*")))
                .unwrap_or_else(|| "*".to_owned()),
            methods: list(r.get("methods")),
            hosts: list(r.get("hosts")),
            deprecated: text(r.get("deprecated")),
            sunset: text(r.get("sunset")),
            link: text(r.get("deprecation_link")),
            chain: list(r.get("chain")),
        })
        .collect()
}

/// The catalogue page's body.
pub async fn page(ctl: &Control) -> Result<Markup, ApiError> {
    let current = ctl.store.current().await?;
    let entries = current
        .as_ref()
        .and_then(|r| r.config.as_deref())
        .map(entries)
        .unwrap_or_default();
    let documented: Vec<String> = ctl
        .store
        .api_docs()
        .await?
        .into_iter()
        .map(|d| d.route)
        .collect();
    Ok(html! {
        @if let Some(r) = &current { p.note { "From config revision " (r.id) ", served by every gateway that follows this control plane." } }
        @if entries.is_empty() { p { "No APIs are published yet." } } @else {
            div.scroll { table {
                caption.note { "APIs and their versions" }
                thead { tr { th scope="col" { "API" } th scope="col" { "Path" } th scope="col" { "Methods" } th scope="col" { "Status" } th scope="col" { "Reference" } } }
                tbody { @for e in &entries {
                    tr {
                        td { (e.name) }
                        td { code { (e.path) } @if !e.hosts.is_empty() { br; span.note { "on " (e.hosts.join(", ")) } } }
                        td { @if e.methods.is_empty() { "any" } @else { (e.methods.join(", ")) } }
                        td { (status(e)) }
                        td { @if documented.contains(&e.name) {
                            a href={ "/portal/apis/" (e.name) } aria-label={ "API reference for " (e.name) } { "API reference" }
                        } @else { span.note { "none yet" } } }
                    }
                } }
            } }
        }
    })
}

fn status(e: &Entry) -> Markup {
    html! {
        @if e.deprecated.is_none() && e.sunset.is_none() { span.badge.good { "current" } }
        @else {
            span.badge.warn { "deprecated" @if let Some(d) = &e.deprecated { " since " (d) } }
            @if let Some(s) = &e.sunset { " " span.badge.bad { "sunset " (s) } }
            @if let Some(l) = &e.link { " " a href=(l) rel="noopener noreferrer" { "migration notes" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_their_deprecation() {
        let config = r#"
[[routes]]
name = "v1"
path_prefix = "/v1/"
upstream = "app"
deprecated = "2026-01-01T00:00:00Z"
sunset = 2027-06-30T00:00:00Z
[[routes]]
name = "v2"
path = "/v2/things"
methods = ["GET"]
upstream = "app"
"#;
        let e = entries(config);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].path, "/v1/*");
        assert_eq!(e[0].sunset.as_deref(), Some("2027-06-30T00:00:00Z"));
        assert_eq!(e[1].methods, vec!["GET".to_owned()]);
        assert!(e[1].deprecated.is_none());
    }
}
