//! Tollgate built-in plugin `headers`: add, set and remove request and response headers.
//!
//! ```toml
//! [plugins.add-ids]
//! module = "plugins/target/wasm32-wasip2/release/headers.wasm"
//! [plugins.add-ids.config]
//! request.set = { "x-gateway" = "tollgate" }
//! response.remove = ["server"]
//! ```
//!
//! Within a phase the operations run in the order remove, set, add. Only phases that have
//! operations are declared, so the gateway does not call the others. See the README for the
//! full config.

mod config;

use config::{Ops, RawConfig, Rules};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, Response, log};

/// The header operations the plugin needs from a request or a response.
trait HeaderMap {
    fn remove_header(&self, name: &str);
    fn set_header(&self, name: &str, value: &str) -> Result<(), String>;
    fn append_header(&self, name: &str, value: &str) -> Result<(), String>;
}

impl HeaderMap for Request<'_> {
    fn remove_header(&self, name: &str) {
        Request::remove_header(self, name)
    }
    fn set_header(&self, name: &str, value: &str) -> Result<(), String> {
        Request::set_header(self, name, value)
    }
    fn append_header(&self, name: &str, value: &str) -> Result<(), String> {
        Request::append_header(self, name, value)
    }
}

impl HeaderMap for Response<'_> {
    fn remove_header(&self, name: &str) {
        Response::remove_header(self, name)
    }
    fn set_header(&self, name: &str, value: &str) -> Result<(), String> {
        Response::set_header(self, name, value)
    }
    fn append_header(&self, name: &str, value: &str) -> Result<(), String> {
        Response::append_header(self, name, value)
    }
}

fn apply(ops: &Ops, target: &impl HeaderMap) {
    for name in &ops.remove {
        target.remove_header(name);
    }
    // Names and values were validated in `init`; a refusal here means the host's rule is
    // stricter than ours, which is worth a log line but not a failed request.
    for (name, value) in &ops.set {
        if let Err(e) = target.set_header(name, value) {
            log::warn(&format!("headers: set {name}: {e}"));
        }
    }
    for (name, value) in &ops.add {
        if let Err(e) = target.append_header(name, value) {
            log::warn(&format!("headers: add {name}: {e}"));
        }
    }
}

struct Headers(Rules);

impl Plugin for Headers {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(Headers)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::none();
        caps.request = !self.0.request.is_empty();
        caps.response = !self.0.response.is_empty();
        caps
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        apply(&self.0.request, req);
        Action::Continue
    }

    fn on_response(&self, _req: &Request<'_>, resp: &Response<'_>) -> Action {
        apply(&self.0.response, resp);
        Action::Continue
    }
}

tollgate_sdk::export_plugin!(Headers);
