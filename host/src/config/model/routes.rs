//! `[[routes]]`: what a route matches, where it goes and the plugins it runs.

use std::sync::Arc;

use http::Method;

use super::Deprecation;

/// How a route matches the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The whole path equals this.
    Exact(String),
    /// The path is this prefix or continues it at a `/` boundary (`/api` matches `/api`,
    /// `/api/x`, not `/apix`). `/` matches everything.
    Prefix(String),
}

/// A route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name.
    pub name: Arc<str>,
    /// Host names (lower case, no port); `*.example.com` matches one or more labels; empty = any.
    pub hosts: Vec<String>,
    /// Path match.
    pub path: PathMatch,
    /// Allowed methods; empty = any.
    pub methods: Vec<Method>,
    /// Upstream name (validated to exist).
    pub upstream: String,
    /// Plugin names in chain order (validated to exist).
    pub chain: Vec<String>,
    /// Match the path ignoring ASCII case (`case_insensitive = true`), for upstreams that serve
    /// `/Admin` as `/admin`.
    pub case_insensitive: bool,
    /// The `Deprecation`, `Sunset` and `Link` headers added to every response of the route
    /// (`deprecated`, `sunset`, `deprecation_link`); `None` when it sets none of them.
    pub deprecation: Option<Arc<Deprecation>>,
}
