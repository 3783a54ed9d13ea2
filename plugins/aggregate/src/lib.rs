//! Tollgate built-in plugin `aggregate`: answer a route from several upstream calls, made
//! concurrently by the gateway, merged into one JSON document.
//!
//! ```toml
//! [plugins.profile]
//! module = "aggregate"
//! fetch = ["users", "orders"]          # the only upstreams it may call
//! [plugins.profile.config]
//! path = "/profile/{id}"
//! timeout_ms = 800                     # overall deadline
//! backends = [
//!   { name = "user", upstream = "users", path = "/users/{path.id}", select = ["id", "name"] },
//!   { name = "orders", upstream = "orders", path = "/orders", query = { user = "{path.id}" }, required = false },
//! ]
//! ```
//!
//! The plugin only describes requests and merges answers: the gateway does the I/O with its own
//! pooled client, limits and timeouts (`http-client.fetch`), and only to the upstreams in the
//! entry's `fetch` list. Time spent waiting does not count against the plugin's CPU deadline.
//! See the README for the config table.

mod config;
mod merge;
mod pattern;
mod template;

use config::{Backend, RawConfig, Settings};
use merge::{Merged, classify, merge, required_failure_body};
use serde_json::json;
use template::{Place, Source, Values, percent_encode_into, query_param};
use tollgate_sdk::fetch::{self, OutgoingRequest};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, context, log, metrics};

/// The response header that marks an answer missing some optional backend.
const PARTIAL_HEADER: &str = "x-tollgate-partial";

/// Placeholder values of one incoming request, looked up on first use.
struct Incoming<'a> {
    req: &'a Request<'a>,
    params: Vec<(String, String)>,
    query: Option<Option<String>>,
}

impl Values for Incoming<'_> {
    fn get(&mut self, source: &Source) -> Option<String> {
        match source {
            Source::Path(name) => self
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone()),
            Source::Query(name) => {
                let req = self.req;
                let query = self.query.get_or_insert_with(|| req.query());
                query_param(query.as_deref()?, name)
            }
            Source::Header(name) => self.req.header(name),
            Source::Context(key) => context::get(key),
        }
    }
}

/// The backend's request for this incoming request, or why it cannot be made (a 400).
fn outgoing(
    backend: &Backend,
    values: &mut Incoming<'_>,
    request_id: Option<&str>,
) -> Result<OutgoingRequest, template::RenderError> {
    let mut path_and_query = backend.path.render(values, Place::Path)?;
    let mut first = true;
    for (name, value) in &backend.query {
        let value = value.render(values, Place::Query)?;
        if value.is_empty() {
            continue;
        }
        path_and_query.push(if first { '?' } else { '&' });
        first = false;
        percent_encode_into(&mut path_and_query, name);
        path_and_query.push('=');
        path_and_query.push_str(&value);
    }
    let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
    for (name, value) in &backend.headers {
        let value = value.render(values, Place::Header)?;
        if value.is_empty() {
            continue;
        }
        headers.retain(|(n, _)| n != name);
        headers.push((name.clone(), value));
    }
    if let Some(id) = request_id {
        headers.push(("x-request-id".to_owned(), id.to_owned()));
    }
    Ok(OutgoingRequest {
        upstream: backend.upstream.clone(),
        method: backend.method.clone(),
        path_and_query,
        headers,
        body: Vec::new(),
        timeout_ms: backend.timeout_ms,
    })
}

struct Aggregate(Settings);

impl Plugin for Aggregate {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(Aggregate)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request()
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        let settings = &self.0;
        let params = match &settings.path {
            None => Vec::new(),
            Some(pattern) => match pattern.matches(&req.path()) {
                Some(params) => params,
                None => {
                    return Action::json(
                        404,
                        &json!({ "error": "no aggregation matches this path" }),
                    );
                }
            },
        };
        let mut values = Incoming {
            req,
            params,
            query: None,
        };
        let request_id = req.header("x-request-id");
        let mut requests = Vec::with_capacity(settings.backends.len());
        for backend in &settings.backends {
            match outgoing(backend, &mut values, request_id.as_deref()) {
                Ok(r) => requests.push(r),
                Err(e) => {
                    return Action::json(
                        400,
                        &json!({ "error": e.to_string(), "backend": backend.name }),
                    );
                }
            }
        }

        // One call: the gateway sends them all at once and returns when the last has answered
        // or hit its deadline (each at most the overall `timeout_ms`).
        let mut answers = fetch::fetch(&requests).into_iter();
        let outcomes: Vec<_> = settings
            .backends
            .iter()
            .map(|backend| {
                let answer = answers
                    .next()
                    .unwrap_or_else(|| Err("the gateway returned no answer".to_owned()))
                    .map(|r| (r.status, r.body));
                let outcome = classify(backend, settings.merge, answer);
                let result = if outcome.is_ok() { "ok" } else { "error" };
                metrics::counter_add(
                    "aggregate_backend_total",
                    &[("backend", backend.name.as_str()), ("result", result)],
                    1,
                );
                if let Err(failure) = &outcome {
                    log::info(&format!(
                        "aggregate: backend `{}` failed: {}",
                        backend.name, failure.message
                    ));
                }
                outcome
            })
            .collect();

        match merge(settings, outcomes) {
            Merged::Answer { body, partial } => {
                let action = Action::json(200, &body);
                if partial {
                    action.header(PARTIAL_HEADER, "true")
                } else {
                    action
                }
            }
            Merged::RequiredFailed {
                backend,
                failed,
                failure,
            } => {
                log::warn(&format!(
                    "aggregate: required backend `{backend}` failed: {}",
                    failure.message
                ));
                Action::json(502, &required_failure_body(&backend, &failed, &failure))
            }
        }
    }
}

tollgate_sdk::export_plugin!(Aggregate);
