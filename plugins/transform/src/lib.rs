//! Tollgate built-in plugin `transform`: reshape requests and responses on their way through
//! the gateway.
//!
//! ```toml
//! [plugins.shape]
//! module = "plugins/target/wasm32-wasip2/release/transform.wasm"
//! [plugins.shape.config]
//! request.path = { strip_prefix = "/api" }
//! request.headers.rename = { "x-user" = "x-legacy-user" }
//! response.body.convert = "xml-to-json"
//! ```
//!
//! Request phase order: path, query, body, headers. Response phase: status, body, headers.
//! Only the phases and bodies that have rules are declared, so a header- or path-only config
//! keeps both bodies streaming. See the README for the full config.

mod body;
mod config;
mod json;
mod path;
mod query;

use body::{BodyError, Outcome};
use config::{PairOps, RawConfig, Rules};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, Response, log};

/// The header operations the plugin needs from a request or a response.
trait Headers {
    fn header_all(&self, name: &str) -> Vec<String>;
    fn remove_header(&self, name: &str);
    fn set_header(&self, name: &str, value: &str) -> Result<(), String>;
    fn append_header(&self, name: &str, value: &str) -> Result<(), String>;
}

macro_rules! impl_headers {
    ($t:ident) => {
        impl Headers for $t<'_> {
            fn header_all(&self, name: &str) -> Vec<String> {
                $t::header_all(self, name)
            }
            fn remove_header(&self, name: &str) {
                $t::remove_header(self, name)
            }
            fn set_header(&self, name: &str, value: &str) -> Result<(), String> {
                $t::set_header(self, name, value)
            }
            fn append_header(&self, name: &str, value: &str) -> Result<(), String> {
                $t::append_header(self, name, value)
            }
        }
    };
}
impl_headers!(Request);
impl_headers!(Response);

/// Remove, rename, set, add. Names and values were validated in `init`; a refusal by the host
/// is logged rather than failing the request.
fn apply_headers(ops: &PairOps, target: &impl Headers) {
    for name in &ops.remove {
        target.remove_header(name);
    }
    for (from, to) in &ops.rename {
        let values = target.header_all(from);
        if values.is_empty() {
            continue;
        }
        target.remove_header(from);
        target.remove_header(to);
        for value in values {
            if let Err(e) = target.append_header(to, &value) {
                log::warn(&format!("transform: rename {from} -> {to}: {e}"));
            }
        }
    }
    for (name, value) in &ops.set {
        if let Err(e) = target.set_header(name, value) {
            log::warn(&format!("transform: set {name}: {e}"));
        }
    }
    for (name, value) in &ops.add {
        if let Err(e) = target.append_header(name, value) {
            log::warn(&format!("transform: add {name}: {e}"));
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> Action {
    Action::json(
        status,
        &serde_json::json!({ "error": code, "plugin": "transform", "message": message }),
    )
}

struct Transform(Rules);

impl Transform {
    /// Run one phase's body rules: read the body through `get` only when the content type is
    /// ours, write the result through `set`. Returns the new content type when the format changed.
    fn body(
        &self,
        rules: &config::BodyRules,
        content_type: Option<String>,
        get: impl FnOnce() -> Result<Vec<u8>, String>,
        set: impl FnOnce(Vec<u8>) -> Result<(), String>,
    ) -> Result<Option<&'static str>, BodyError> {
        if !body::applies(rules, content_type.as_deref()) {
            return Ok(None);
        }
        let bytes = get().map_err(BodyError::Invalid)?;
        match body::transform(
            rules,
            content_type.as_deref(),
            &bytes,
            self.0.max_body_bytes,
        )? {
            Outcome::Unchanged => Ok(None),
            Outcome::Replaced { body, content_type } => {
                set(body).map_err(BodyError::Invalid)?;
                Ok(content_type)
            }
        }
    }
}

impl Plugin for Transform {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(Transform)
    }

    fn capabilities(&self) -> Capabilities {
        let rules = &self.0;
        let mut caps = Capabilities::none();
        // Response body rules also need the request phase, to ask the upstream for an
        // unencoded body.
        caps.request = !rules.request.is_empty() || !rules.response.body.is_empty();
        caps.response = !rules.response.is_empty();
        // Bodies are read when a body rule calls `body()` (contract 0.2).
        caps
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        let rules = &self.0.request;
        if let Some(rewrite) = &rules.path {
            match rewrite.apply(&req.path()) {
                Ok(None) => {}
                Ok(Some(new_path)) => {
                    if let Err(e) = req.set_path(&new_path) {
                        return error(400, "invalid_rewrite", &e);
                    }
                }
                Err(e) => return error(400, "invalid_rewrite", &e.0),
            }
        }
        if !rules.query.is_empty() {
            let query = query::apply(&rules.query, req.query().as_deref());
            req.set_query(query.as_deref());
        }
        if !rules.body.is_empty() {
            let outcome = self.body(
                &rules.body,
                req.header("content-type"),
                || req.body(),
                |b| req.set_body(b),
            );
            match outcome {
                Ok(None) => {}
                Ok(Some(content_type)) => {
                    if let Err(e) = req.set_header("content-type", content_type) {
                        log::warn(&format!("transform: content-type: {e}"));
                    }
                }
                Err(BodyError::TooLarge(max)) => {
                    return error(
                        413,
                        "body_too_large",
                        &format!(
                            "the body is larger than {max} bytes, the most this route transforms"
                        ),
                    );
                }
                Err(BodyError::Invalid(m)) => return error(400, "invalid_body", &m),
            }
        }
        apply_headers(&rules.headers, req);
        if !self.0.response.body.is_empty() {
            // The response body is parsed here: ask the upstream not to compress it.
            req.remove_header("accept-encoding");
        }
        Action::Continue
    }

    fn on_response(&self, _req: &Request<'_>, resp: &Response<'_>) -> Action {
        let rules = &self.0.response;
        let status = resp.status();
        if let Some((_, to)) = rules.status.iter().find(|(from, _)| *from == status)
            && let Err(e) = resp.set_status(*to)
        {
            log::warn(&format!("transform: status {status} -> {to}: {e}"));
        }
        let encoded = resp
            .header("content-encoding")
            .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
        if !rules.body.is_empty() && !encoded {
            let outcome = self.body(
                &rules.body,
                resp.header("content-type"),
                || resp.body(),
                |b| resp.set_body(b),
            );
            match outcome {
                Ok(None) => {}
                Ok(Some(content_type)) => {
                    if let Err(e) = resp.set_header("content-type", content_type) {
                        log::warn(&format!("transform: content-type: {e}"));
                    }
                }
                Err(BodyError::TooLarge(max)) => {
                    return error(
                        502,
                        "upstream_body_too_large",
                        &format!(
                            "the upstream's body is larger than {max} bytes, the most this route transforms"
                        ),
                    );
                }
                Err(BodyError::Invalid(m)) => return error(502, "bad_upstream_body", &m),
            }
        } else if !rules.body.is_empty() {
            log::warn("transform: response body left as is: it has a content-encoding");
        }
        apply_headers(&rules.headers, resp);
        Action::Continue
    }
}

tollgate_sdk::export_plugin!(Transform);
