//! Tollgate built-in plugin `ip-filter`: allow or deny requests by the client's IP address,
//! with allow and deny lists of IPv4 and IPv6 CIDR networks. Deny wins; when an allow list is
//! set, every client outside it is refused.
//!
//! ```toml
//! [plugins.office-only]
//! module = "ip-filter"
//! [plugins.office-only.config]
//! allow = ["10.0.0.0/8", "2001:db8::/32"]
//! deny = ["10.6.0.0/16"]
//! ```
//!
//! The decision is on the address the gateway gives as the client IP (the TCP peer, or the one
//! its trusted-proxy rule derives), never on `X-Forwarded-For` itself. Refusals are
//! `403 {"error":"forbidden","message":"not allowed"}`. See the README.

mod cidr;
mod config;

use std::net::IpAddr;

use config::{Filter, RawConfig};
use tollgate_sdk::{Action, Capabilities, Plugin, Request, log, metrics};

struct IpFilter(Filter);

fn forbidden() -> Action {
    Action::json(
        403,
        &serde_json::json!({ "error": "forbidden", "message": "not allowed" }),
    )
}

impl Plugin for IpFilter {
    type Config = RawConfig;

    fn init(config: RawConfig) -> Result<Self, String> {
        config::validate(config).map(IpFilter)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().request()
    }

    fn on_request(&self, req: &Request<'_>) -> Action {
        let text = req.client_ip();
        let Ok(ip) = text.parse::<IpAddr>() else {
            // Fail closed: the host always gives an address, so this is a host bug.
            log::error(&format!(
                "ip-filter: client ip {text:?} is not an IP address"
            ));
            metrics::counter_add("denied_total", &[("reason", "bad_client_ip")], 1);
            return forbidden();
        };
        match self.0.decide(ip) {
            Ok(()) => Action::Continue,
            Err(denial) => {
                let reason = match denial {
                    config::Denial::Denied(_) => "deny_list",
                    config::Denial::NotAllowed => "not_in_allow_list",
                };
                metrics::counter_add("denied_total", &[("reason", reason)], 1);
                log::info(&format!("ip-filter: denied {ip}: {denial}"));
                forbidden()
            }
        }
    }
}

tollgate_sdk::export_plugin!(IpFilter);
