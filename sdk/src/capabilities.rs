use crate::__private::tollgate::plugin::types as raw;

/// What a plugin declares about itself after `init`: the phases the gateway calls. Undeclared
/// phases are skipped by the host at no cost. Bodies need no declaration: the gateway reads one
/// when the plugin calls [`crate::Request::body`] or [`crate::Response::body`], and streams it
/// otherwise.
///
/// ```
/// use tollgate_sdk::Capabilities;
/// let caps = Capabilities::none().request().log();
/// assert!(caps.request && caps.log && !caps.response);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Call [`crate::Plugin::on_request`].
    pub request: bool,
    /// Call [`crate::Plugin::on_response`].
    pub response: bool,
    /// Call [`crate::Plugin::on_log`].
    pub log: bool,
}

impl Capabilities {
    /// No phases: a plugin that only validates its config.
    pub const fn none() -> Self {
        Self {
            request: false,
            response: false,
            log: false,
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
}

/// The request and response phases, no log phase.
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
        raw::Capabilities { phases }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_wit_flags() {
        let raw: raw::Capabilities = Capabilities::none().response().log().into();
        assert_eq!(raw.phases, raw::Phases::RESPONSE | raw::Phases::LOG);
        let raw: raw::Capabilities = Capabilities::default().into();
        assert_eq!(raw.phases, raw::Phases::REQUEST | raw::Phases::RESPONSE);
    }
}
