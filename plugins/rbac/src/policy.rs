//! The validated rules and the decision: deny rules win over allow rules, and a request that no
//! allow rule matches is denied. Plain Rust with no host calls: unit-tested natively.

use crate::pattern::{self, PathPattern};

/// Whether a matching rule lets the request through or refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Let it through (unless a deny rule also matches).
    Allow,
    /// Refuse it, whatever the allow rules say.
    Deny,
}

/// Who a rule applies to. A rule matches a request when any of its criteria does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subjects {
    /// Consumer names; `any_consumer` stands for `"*"`.
    pub consumers: Vec<String>,
    /// Role names; `"*"` in the config also sets `any_consumer`.
    pub roles: Vec<String>,
    /// `"*"` in `consumers` or `roles`: any request that has a consumer.
    pub any_consumer: bool,
    /// `anonymous = true`: requests without a consumer.
    pub anonymous: bool,
}

/// Which methods a rule covers, upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Methods {
    /// `["*"]`.
    Any,
    /// These methods.
    List(Vec<String>),
}

impl Methods {
    fn contains(&self, method: &str) -> bool {
        match self {
            Methods::Any => true,
            Methods::List(list) => list.iter().any(|m| m == method),
        }
    }
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Who it applies to.
    pub subjects: Subjects,
    /// Which methods.
    pub methods: Methods,
    /// Which paths (any of them).
    pub paths: Vec<PathPattern>,
    /// What it does.
    pub effect: Effect,
}

/// The whole validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Lower-case paths and patterns before matching.
    pub case_insensitive_paths: bool,
    /// HEAD is allowed by rules that allow GET.
    pub head_as_get: bool,
    /// Honour method-override headers and `_method` on POST requests.
    pub allow_method_override: bool,
    /// The rules, in config order (order does not change the decision).
    pub rules: Vec<Rule>,
}

/// The identity a decision is made for, read from the request context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The consumer, when authenticated.
    pub consumer: Option<String>,
    /// Its roles (only read when there is a consumer).
    pub roles: Vec<String>,
}

impl Identity {
    /// Build from the context values `consumer` and `roles` (comma-separated). An empty consumer
    /// counts as none; roles without a consumer are ignored (an anonymous request has none).
    pub fn from_context(consumer: Option<String>, roles: Option<String>) -> Self {
        let consumer = consumer
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        let roles = match (&consumer, roles) {
            (Some(_), Some(roles)) => roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Self { consumer, roles }
    }
}

/// Why a request was refused (for the log; the client only learns "not allowed").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The deny rule at this index (0-based, config order) matched.
    DenyRule(usize),
    /// No allow rule matched.
    NoAllowRule,
    /// The path still had a `.` or `..` segment (the gateway resolves them, so this means a
    /// path that something might read differently): refused rather than guessed at.
    DotSegment,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::DenyRule(i) => write!(f, "deny rule rules[{i}] matched"),
            Denial::NoAllowRule => f.write_str("no allow rule matched"),
            Denial::DotSegment => f.write_str("dot-segment in path"),
        }
    }
}

impl Subjects {
    fn matches(&self, who: &Identity) -> bool {
        match &who.consumer {
            None => self.anonymous,
            Some(consumer) => {
                self.any_consumer
                    || self.consumers.iter().any(|c| c == consumer)
                    || self.roles.iter().any(|r| who.roles.contains(r))
            }
        }
    }
}

impl Policy {
    /// Decide on `method` (the real one, or the honoured override) and the normalised `path`.
    ///
    /// The path is read two ways, as written and with `;` parameters cut from each segment (how
    /// Tomcat and friends route); a deny rule matching either refuses, and an allow rule must
    /// match both.
    pub fn decide(&self, who: &Identity, method: &str, path: &str) -> Result<(), Denial> {
        let method = method.to_ascii_uppercase();
        let written = pattern::canonical_segments(path, self.case_insensitive_paths);
        let stripped = pattern::without_params(&written);
        if pattern::has_dot_segment(&written) || pattern::has_dot_segment(&stripped) {
            return Err(Denial::DotSegment);
        }
        let views: &[&[String]] = if stripped == written {
            &[&written]
        } else {
            &[&written, &stripped]
        };

        // HEAD runs the GET handler upstream: a deny rule for GET always covers it; an allow
        // rule for GET covers it only under `head_as_get`.
        let is_head = method == "HEAD";
        let deny_methods = |rule: &Rule| {
            rule.methods.contains(&method) || (is_head && rule.methods.contains("GET"))
        };
        let allow_methods = |rule: &Rule| {
            rule.methods.contains(&method)
                || (is_head && self.head_as_get && rule.methods.contains("GET"))
        };
        let path_matches =
            |rule: &Rule, segs: &[String]| rule.paths.iter().any(|p| p.matches(segs));

        for (i, rule) in self.rules.iter().enumerate() {
            if rule.effect == Effect::Deny
                && deny_methods(rule)
                && rule.subjects.matches(who)
                && views.iter().any(|segs| path_matches(rule, segs))
            {
                return Err(Denial::DenyRule(i));
            }
        }
        let allowed = views.iter().all(|segs| {
            self.rules.iter().any(|rule| {
                rule.effect == Effect::Allow
                    && allow_methods(rule)
                    && rule.subjects.matches(who)
                    && path_matches(rule, segs)
            })
        });
        if allowed {
            Ok(())
        } else {
            Err(Denial::NoAllowRule)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawConfig, validate};

    fn policy(json: serde_json::Value) -> Policy {
        let raw: RawConfig = tollgate_sdk::parse_config(&json.to_string()).expect("parses");
        validate(raw).expect("valid")
    }

    fn user(consumer: &str, roles: &str) -> Identity {
        Identity::from_context(Some(consumer.into()), Some(roles.into()))
    }

    fn anonymous() -> Identity {
        Identity::from_context(None, None)
    }

    fn sample(case_insensitive: bool, head_as_get: bool) -> Policy {
        policy(serde_json::json!({
            "case_insensitive_paths": case_insensitive,
            "head_as_get": head_as_get,
            "rules": [
                { "roles": ["admin"], "methods": ["*"], "paths": ["/admin/**"], "effect": "allow" },
                { "roles": ["*"], "methods": ["GET", "POST"], "paths": ["/api/**", "/admin/public"], "effect": "allow" },
                { "consumers": ["mallory"], "methods": ["*"], "paths": ["/**"], "effect": "deny" },
                { "roles": ["user"], "methods": ["DELETE"], "paths": ["/api/*/orders"], "effect": "deny" },
                { "anonymous": true, "methods": ["GET"], "paths": ["/public/**"], "effect": "allow" },
            ],
        }))
    }

    #[test]
    fn admin_allowed_user_denied_by_default() {
        let p = sample(false, false);
        assert_eq!(
            p.decide(&user("root", "admin"), "DELETE", "/admin/users/1"),
            Ok(())
        );
        assert_eq!(
            p.decide(&user("bob", "user"), "GET", "/admin/users"),
            Err(Denial::NoAllowRule)
        );
        assert_eq!(
            p.decide(&user("bob", "user"), "GET", "/admin/public"),
            Ok(())
        );
        assert_eq!(
            p.decide(&user("bob", "user"), "PUT", "/api/x"),
            Err(Denial::NoAllowRule)
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = sample(false, false);
        assert_eq!(
            p.decide(&user("mallory", "admin"), "GET", "/admin/users"),
            Err(Denial::DenyRule(2))
        );
        assert_eq!(
            p.decide(&user("bob", "user"), "GET", "/api/7/orders"),
            Ok(())
        );
        // An explicit allow for DELETE does not beat the deny rule either.
        let p = policy(serde_json::json!({ "rules": [
            { "roles": ["user"], "methods": ["*"], "paths": ["/**"], "effect": "allow" },
            { "roles": ["user"], "methods": ["DELETE"], "paths": ["/api/*/orders"], "effect": "deny" },
        ]}));
        assert_eq!(
            p.decide(&user("bob", "user"), "delete", "/api/7/orders"),
            Err(Denial::DenyRule(1))
        );
        assert_eq!(
            p.decide(&user("bob", "user"), "DELETE", "/api/7/items"),
            Ok(())
        );
    }

    #[test]
    fn anonymous_requests_need_an_anonymous_rule() {
        let p = sample(false, false);
        assert_eq!(p.decide(&anonymous(), "GET", "/public/x"), Ok(()));
        assert_eq!(
            p.decide(&anonymous(), "GET", "/api/x"),
            Err(Denial::NoAllowRule)
        );
        // Roles without a consumer are ignored.
        let who = Identity::from_context(None, Some("admin".into()));
        assert_eq!(who.roles, Vec::<String>::new());
        assert_eq!(p.decide(&who, "GET", "/admin/x"), Err(Denial::NoAllowRule));
        // Authenticated consumers are not "anonymous".
        assert_eq!(
            p.decide(&user("carol", ""), "POST", "/public/x"),
            Err(Denial::NoAllowRule)
        );
    }

    #[test]
    fn roles_are_split_and_trimmed() {
        let who = user("bob", " user , admin ,,");
        assert_eq!(who.roles, vec!["user", "admin"]);
        assert_eq!(Identity::from_context(Some("".into()), None).consumer, None);
    }

    #[test]
    fn path_tricks_are_decided_on_the_canonical_path() {
        let p = sample(false, false);
        let bob = user("bob", "user");
        for path in [
            "/admin",
            "/admin/",
            "//admin",
            "/%61dmin",
            "/admin;x=1",
            "/admin;/users",
        ] {
            assert_eq!(
                p.decide(&bob, "GET", path),
                Err(Denial::NoAllowRule),
                "{path}"
            );
        }
        let root = user("root", "admin");
        assert_eq!(p.decide(&root, "GET", "//admin//x"), Ok(()));
        assert_eq!(
            p.decide(&root, "GET", "/api/../admin"),
            Err(Denial::DotSegment)
        );
        // Deny rules see through `;` parameters; allow rules must match both readings.
        let mallory_free = policy(serde_json::json!({ "rules": [
            { "roles": ["*"], "methods": ["*"], "paths": ["/**"], "effect": "allow" },
            { "roles": ["user"], "methods": ["*"], "paths": ["/admin/**"], "effect": "deny" },
        ]}));
        assert_eq!(
            mallory_free.decide(&bob, "GET", "/admin;jsessionid=1/x"),
            Err(Denial::DenyRule(1))
        );
        let narrow = policy(serde_json::json!({ "rules": [
            { "roles": ["user"], "methods": ["*"], "paths": ["/api/*/orders"], "effect": "allow" },
        ]}));
        assert_eq!(narrow.decide(&bob, "GET", "/api/1;v=2/orders"), Ok(()));
        assert_eq!(
            narrow.decide(&bob, "GET", "/api/;v=2/orders"),
            Err(Denial::NoAllowRule)
        );
    }

    #[test]
    fn case_rule() {
        let bob = user("bob", "user");
        let deny_admin = |ci| {
            policy(serde_json::json!({ "case_insensitive_paths": ci, "rules": [
                { "roles": ["*"], "methods": ["*"], "paths": ["/**"], "effect": "allow" },
                { "roles": ["user"], "methods": ["*"], "paths": ["/admin/**"], "effect": "deny" },
            ]}))
        };
        assert_eq!(deny_admin(false).decide(&bob, "GET", "/ADMIN"), Ok(()));
        assert_eq!(
            deny_admin(true).decide(&bob, "GET", "/ADMIN"),
            Err(Denial::DenyRule(1))
        );
        assert_eq!(
            sample(true, false).decide(&user("root", "admin"), "GET", "/ADMIN/x"),
            Ok(())
        );
    }

    #[test]
    fn head_follows_get_only_when_configured() {
        let bob = user("bob", "user");
        assert_eq!(
            sample(false, false).decide(&bob, "HEAD", "/api/x"),
            Err(Denial::NoAllowRule)
        );
        assert_eq!(sample(false, true).decide(&bob, "HEAD", "/api/x"), Ok(()));
        // A deny rule for GET covers HEAD under either setting.
        for head_as_get in [false, true] {
            let p = policy(serde_json::json!({ "head_as_get": head_as_get, "rules": [
                { "roles": ["user"], "methods": ["*"], "paths": ["/**"], "effect": "allow" },
                { "roles": ["user"], "methods": ["GET"], "paths": ["/secret"], "effect": "deny" },
            ]}));
            assert_eq!(
                p.decide(&bob, "HEAD", "/secret"),
                Err(Denial::DenyRule(1)),
                "head_as_get = {head_as_get}"
            );
        }
    }

    #[test]
    fn methods_compare_case_insensitively() {
        let p = sample(false, false);
        assert_eq!(p.decide(&user("bob", "user"), "get", "/api/x"), Ok(()));
    }
}
