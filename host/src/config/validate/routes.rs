//! `[[routes]]`: what a route matches (hosts, a normalised path, methods), the upstream it goes
//! to and the plugins of its chain, each checked against what is defined.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use http::Method;

use super::Validator;
use super::validator::known;
use crate::config::error::Issues;
use crate::config::model::{PathMatch, PluginSpec, Route, Upstream};
use crate::config::raw::RawRoute;

impl Validator<'_> {
    /// `[[routes]]` in file order; a route with any problem is left out. No two routes may match
    /// the same hosts, path and methods.
    pub(super) fn routes(
        &mut self,
        value: Option<toml::Value>,
        upstreams: &BTreeMap<String, Upstream>,
        plugins: &BTreeMap<String, PluginSpec>,
    ) -> Vec<Route> {
        let Some(value) = value else {
            return Vec::new();
        };
        let toml::Value::Array(items) = value else {
            self.issues
                .push("routes", "must be an array of tables ([[routes]])");
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut names = HashSet::new();
        let mut seen_matches = BTreeSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("routes[{i}]");
            let Some(raw) = self.de::<RawRoute>(&path, item) else {
                continue;
            };
            let mut ok = true;
            if !names.insert(raw.name.clone()) {
                self.issues.push(
                    format!("{path}.name"),
                    format!("duplicate route name `{}`", raw.name),
                );
                ok = false;
            }
            let deprecation = self.route_deprecation(&path, &raw);
            let path_match = self.route_path(&path, raw.path, raw.path_prefix);
            let (hosts, hosts_ok) = self.route_hosts(&path, raw.hosts.unwrap_or_default());
            let (methods, methods_ok) = self.route_methods(&path, raw.methods.unwrap_or_default());
            let targets_ok =
                self.route_targets(&path, &raw.upstream, &raw.chain, upstreams, plugins);
            let unique = match &path_match {
                Some(pm) => self.unique_match(&path, &hosts, pm, &methods, &mut seen_matches),
                None => true,
            };
            ok = ok && hosts_ok && methods_ok && targets_ok && unique && deprecation.is_ok();
            if let (true, Some(path_match)) = (ok, path_match) {
                out.push(Route {
                    name: Arc::from(raw.name.as_str()),
                    hosts,
                    path: path_match,
                    methods,
                    upstream: raw.upstream,
                    chain: raw.chain,
                    case_insensitive: raw.case_insensitive,
                    deprecation: deprecation.ok().flatten(),
                });
            }
        }
        out
    }

    /// `path` (exact) or `path_prefix`, exactly one of them, in normal form.
    fn route_path(
        &mut self,
        path: &str,
        exact: Option<String>,
        prefix: Option<String>,
    ) -> Option<PathMatch> {
        match (exact, prefix) {
            (Some(p), None) => check_route_path(self.issues, &format!("{path}.path"), &p)
                .then_some(PathMatch::Exact(p)),
            (None, Some(p)) => check_route_path(self.issues, &format!("{path}.path_prefix"), &p)
                .then(|| PathMatch::Prefix(trim_prefix(p))),
            (Some(_), Some(_)) => {
                self.issues
                    .push(path, "set either `path` (exact) or `path_prefix`, not both");
                None
            }
            (None, None) => {
                self.issues
                    .push(path, "needs `path` (exact match) or `path_prefix`");
                None
            }
        }
    }

    /// `hosts`, lower-cased; false when any is not a host name (or a `*.` wildcard).
    fn route_hosts(&mut self, path: &str, raw: Vec<String>) -> (Vec<String>, bool) {
        let mut ok = true;
        let mut hosts = Vec::new();
        for (j, h) in raw.into_iter().enumerate() {
            let host = h.to_ascii_lowercase();
            let bare = host.strip_prefix("*.").unwrap_or(&host);
            let valid = !bare.is_empty()
                && bare.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if valid {
                hosts.push(host);
            } else {
                self.issues.push(
                    format!("{path}.hosts[{j}]"),
                    format!(
                        "`{h}` is not a host name (use `example.com` or `*.example.com`, no port)"
                    ),
                );
                ok = false;
            }
        }
        (hosts, ok)
    }

    /// `methods`; false when any is not an upper-case HTTP method.
    fn route_methods(&mut self, path: &str, raw: Vec<String>) -> (Vec<Method>, bool) {
        let mut ok = true;
        let mut methods = Vec::new();
        for (j, m) in raw.into_iter().enumerate() {
            match Method::from_bytes(m.as_bytes()) {
                Ok(method) if m.bytes().all(|b| b.is_ascii_uppercase()) => methods.push(method),
                _ => {
                    self.issues.push(
                        format!("{path}.methods[{j}]"),
                        format!("`{m}` is not an upper-case HTTP method"),
                    );
                    ok = false;
                }
            }
        }
        (methods, ok)
    }

    /// Are the route's upstream and every plugin of its chain defined?
    fn route_targets(
        &mut self,
        path: &str,
        upstream: &str,
        chain: &[String],
        upstreams: &BTreeMap<String, Upstream>,
        plugins: &BTreeMap<String, PluginSpec>,
    ) -> bool {
        let mut ok = true;
        if !upstreams.contains_key(upstream) {
            self.issues.push(
                format!("{path}.upstream"),
                format!("unknown upstream `{upstream}`{}", known(upstreams.keys())),
            );
            ok = false;
        }
        for (j, p) in chain.iter().enumerate() {
            if !plugins.contains_key(p) {
                self.issues.push(
                    format!("{path}.chain[{j}]"),
                    format!("unknown plugin `{p}`{}", known(plugins.keys())),
                );
                ok = false;
            }
        }
        ok
    }

    /// False when an earlier route matches the same hosts, path and methods (in any order).
    fn unique_match(
        &mut self,
        path: &str,
        hosts: &[String],
        pm: &PathMatch,
        methods: &[Method],
        seen_matches: &mut BTreeSet<String>,
    ) -> bool {
        let mut sorted_hosts = hosts.to_vec();
        sorted_hosts.sort();
        let mut sorted_methods: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
        sorted_methods.sort();
        let key = format!("{sorted_hosts:?} {pm:?} {sorted_methods:?}");
        if !seen_matches.insert(key) {
            self.issues.push(
                path,
                "matches exactly the same hosts, path and methods as an earlier route",
            );
            return false;
        }
        true
    }
}

/// A route path must already be in normal form, since request paths are normalised before
/// matching: a route written any other way could never match.
fn check_route_path(issues: &mut Issues, path: &str, p: &str) -> bool {
    // The same rule as request paths (`crate::path`): a route path must already be its result.
    let problem = match crate::path::normalize_path(p) {
        _ if p.contains('?') => Some("a route path has no query".to_owned()),
        // Routing reads request paths without `;` parameters (crate::proxy::routing).
        _ if p.contains(';') || p.to_ascii_uppercase().contains("%3B") => {
            Some("routing ignores `;` parameters, so a route path cannot have one".to_owned())
        }
        Ok(normal) if normal == p => None,
        Ok(normal) => Some(format!(
            "requests are normalised first, so write `{normal}`"
        )),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = &problem {
        issues.push(path, format!("`{p}` is not a normalised path: {why}"));
    }
    problem.is_none()
}

/// `/api/` and `/api` are the same prefix (matching is at `/` boundaries).
fn trim_prefix(p: String) -> String {
    if p.len() > 1 && p.ends_with('/') {
        p[..p.len() - 1].to_owned()
    } else {
        p
    }
}
