//! `[[listeners]]` and `[admin]`: bound addresses, unique names and addresses, and the admin
//! API's bearer token (required off loopback).

use std::collections::HashSet;
use std::net::SocketAddr;

use super::Validator;
use crate::config::model::{Admin, AdminToken, Listener};
use crate::config::raw::{RawAdmin, RawListener};

impl Validator<'_> {
    /// `[[listeners]]`: at least one; names and non-zero ports unique.
    pub(super) fn listeners(&mut self, value: Option<toml::Value>) -> Vec<Listener> {
        let Some(value) = value else {
            self.issues
                .push("listeners", "at least one [[listeners]] entry is required");
            return Vec::new();
        };
        let raw: Vec<RawListener> = self.de("listeners", value).unwrap_or_default();
        let mut out = Vec::new();
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        for (i, l) in raw.into_iter().enumerate() {
            let path = format!("listeners[{i}]");
            let name = l.name.unwrap_or_else(|| format!("listener-{i}"));
            if !names.insert(name.clone()) {
                self.issues.push(
                    format!("{path}.name"),
                    format!("duplicate listener name `{name}`"),
                );
            }
            match l.addr.parse::<SocketAddr>() {
                Ok(addr) => {
                    if addr.port() != 0 && !addrs.insert(addr) {
                        self.issues.push(
                            format!("{path}.addr"),
                            format!("address {addr} is used twice"),
                        );
                    }
                    let (tls, plain_http) =
                        self.listener_security(&path, l.tls, l.plain_http, l.https_port);
                    out.push(Listener {
                        name,
                        addr,
                        tls,
                        plain_http,
                    });
                }
                Err(_) => self.issues.push(
                    format!("{path}.addr"),
                    format!(
                        "`{}` is not an IP:port address (e.g. \"0.0.0.0:8080\")",
                        l.addr
                    ),
                ),
            }
        }
        out
    }

    /// `[admin]`: the admin listener, when the section is present and valid.
    pub(super) fn admin(&mut self, value: Option<toml::Value>) -> Option<Admin> {
        let raw: RawAdmin = self.de("admin", value?)?;
        let token = self.admin_token(raw.token_env.as_deref(), raw.token_file.as_deref());
        let addr = match raw.addr.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                self.issues.push(
                    "admin.addr",
                    format!(
                        "`{}` is not an IP:port address (e.g. \"127.0.0.1:9090\")",
                        raw.addr
                    ),
                );
                return None;
            }
        };
        // Off loopback the admin API answers only with a token; there is no default token.
        let configured = raw.token_env.is_some() || raw.token_file.is_some();
        if !addr.ip().is_loopback() && !configured {
            self.issues.push(
                "admin.addr",
                format!(
                    "{addr} is not a loopback address: set `token_env` or `token_file` so the admin API requires a bearer token"
                ),
            );
            return None;
        }
        Some(Admin { addr, token })
    }

    /// Read the admin token from `token_env` or `token_file` (one of them, never empty).
    fn admin_token(&mut self, env: Option<&str>, file: Option<&str>) -> Option<AdminToken> {
        match (env, file) {
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.issues.push(
                    "admin.token_file",
                    "set either `token_env` or `token_file`, not both",
                );
                None
            }
            (Some(var), None) => {
                let token = std::env::var(var).ok().map(|t| t.trim().to_owned());
                let token = token.and_then(AdminToken::new);
                if token.is_none() {
                    self.issues.push(
                        "admin.token_env",
                        format!("environment variable `{var}` is not set or is empty"),
                    );
                }
                token
            }
            (None, Some(file)) => {
                let path = self.base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let token = AdminToken::new(text.trim().to_owned());
                        if token.is_none() {
                            self.issues
                                .push("admin.token_file", format!("`{file}` is empty"));
                        }
                        token
                    }
                    Err(e) => {
                        self.issues
                            .push("admin.token_file", format!("cannot read `{file}`: {e}"));
                        None
                    }
                }
            }
        }
    }
}
