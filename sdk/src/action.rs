use crate::__private::tollgate::plugin::types as raw;

/// What happens after a phase call.
///
/// ```
/// use tollgate_sdk::Action;
/// let deny = Action::respond(403).header("www-authenticate", "Bearer").body("forbidden");
/// let json = Action::json(429, &serde_json::json!({ "error": "slow down" }));
/// # let _ = (deny, json);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on with the chain, keeping the changes made through the request or response.
    Continue,
    /// Answer the client with this response. In the request phase the rest of the chain and the
    /// upstream are skipped; in the response phase it replaces the upstream's response.
    Respond {
        /// HTTP status code, 200..=599 (informational 1xx statuses are refused).
        status: u16,
        /// Response headers. Content-Length is set by the gateway.
        headers: Vec<(String, String)>,
        /// Response body.
        body: Vec<u8>,
    },
    /// Call this plugin's same phase again after `millis` milliseconds (throttling), without
    /// holding an instance while waiting. The gateway caps the total wait.
    Defer {
        /// How long to wait before the next call.
        millis: u32,
    },
}

impl Action {
    /// A response with this status, no headers and an empty body; add to it with
    /// [`Action::header`] and [`Action::body`].
    pub fn respond(status: u16) -> Self {
        Action::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with a JSON body and `content-type: application/json`.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Action::respond(status)
            .header("content-type", "application/json")
            .body(value.to_string())
    }

    /// Wait `millis` milliseconds, then call the same phase again.
    pub fn defer(millis: u32) -> Self {
        Action::Defer { millis }
    }

    /// Add a header to a [`Action::Respond`]; has no effect on other actions.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Action::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// Set the body of a [`Action::Respond`]; has no effect on other actions.
    #[must_use]
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        if let Action::Respond { body, .. } = &mut self {
            *body = bytes.into();
        }
        self
    }
}

impl From<Action> for raw::Action {
    fn from(a: Action) -> Self {
        match a {
            Action::Continue => raw::Action::Continue,
            Action::Respond {
                status,
                headers,
                body,
            } => raw::Action::Respond(raw::Reply {
                status,
                headers,
                body,
            }),
            Action::Defer { millis } => raw::Action::Defer(millis),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let a = Action::json(418, &serde_json::json!({"a": 1})).header("x", "y");
        assert_eq!(
            a,
            Action::Respond {
                status: 418,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x".into(), "y".into())
                ],
                body: br#"{"a":1}"#.to_vec(),
            }
        );
        assert_eq!(
            Action::Continue.header("x", "y").body("z"),
            Action::Continue
        );
        assert!(matches!(Action::defer(5).into(), raw::Action::Defer(5)));
    }
}
