use crate::__private::tollgate::plugin::types as raw;

/// What a plugin declares about itself after `init`: the phases the gateway calls and whether it
/// buffers the bodies. Undeclared phases are skipped by the host at no cost.
///
/// ```
/// use tollgate_sdk::Capabilities;
/// let caps = Capabilities::none().request().request_body();
/// assert!(caps.request && caps.request_body && !caps.response);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Call [`crate::Plugin::on_request`].
    pub request: bool,
    /// Call [`crate::Plugin::on_response`].
    pub response: bool,
    /// Call [`crate::Plugin::on_log`].
    pub log: bool,
    /// Buffer the request body so [`crate::Request::body`] works.
    pub request_body: bool,
    /// Buffer the response body so [`crate::Response::body`] works.
    pub response_body: bool,
}

impl Capabilities {
    /// No phases, no bodies: a plugin that only validates its config.
    pub const fn none() -> Self {
        Self {
            request: false,
            response: false,
            log: false,
            request_body: false,
            response_body: false,
        }
    }

    /// Also take part in the request phase.
    pub const fn request(mut self) -> Self {
        self.request = true;
        self
    }

    /// Also take part in the response phase.
    pub const fn response(mut self) -> Self {
        self.response = true;
        self
    }

    /// Also take part in the log phase.
    pub const fn log(mut self) -> Self {
        self.log = true;
        self
    }

    /// Ask for the request body (implies nothing about phases).
    pub const fn request_body(mut self) -> Self {
        self.request_body = true;
        self
    }

    /// Ask for the response body (implies nothing about phases).
    pub const fn response_body(mut self) -> Self {
        self.response_body = true;
        self
    }
}

/// The request and response phases, no bodies, no log phase.
impl Default for Capabilities {
    fn default() -> Self {
        Self::none().request().response()
    }
}

impl From<Capabilities> for raw::Capabilities {
    fn from(c: Capabilities) -> Self {
        let mut phases = raw::Phases::empty();
        phases.set(raw::Phases::REQUEST, c.request);
        phases.set(raw::Phases::RESPONSE, c.response);
        phases.set(raw::Phases::LOG, c.log);
        raw::Capabilities {
            phases,
            request_body: c.request_body,
            response_body: c.response_body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_wit_flags() {
        let raw: raw::Capabilities = Capabilities::none().response().log().into();
        assert_eq!(raw.phases, raw::Phases::RESPONSE | raw::Phases::LOG);
        assert!(!raw.request_body && !raw.response_body);
        let raw: raw::Capabilities = Capabilities::default().into();
        assert_eq!(raw.phases, raw::Phases::REQUEST | raw::Phases::RESPONSE);
    }
}
