//! `[upstreams.NAME]` balancing, health checks, passive ejection and retries.

use std::time::Duration;

use http::Method;

use super::Validator;
use crate::config::model::{Balance, HealthCheck, PassiveHealth, RetryPolicy, Upstream};
use crate::config::raw::{RawBalance, RawHealthCheck, RawPassive, RawUpstream};

const DEFAULT_CHECK_PATH: &str = "/health";
const DEFAULT_CHECK_INTERVAL_MS: u64 = 5_000;
const DEFAULT_CHECK_TIMEOUT_MS: u64 = 1_000;
const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
/// Checks faster than this would make health checking a load test of its own.
const MIN_CHECK_INTERVAL_MS: u64 = 50;
const MAX_RETRIES: u32 = 10;

impl Validator<'_> {
    /// The resilience fields of an upstream (every other field left at its default).
    pub(super) fn resilience(&mut self, path: &str, raw: &RawUpstream) -> Upstream {
        let balance = match raw.balance {
            Some(RawBalance::LeastConnections) => Balance::LeastConnections,
            Some(RawBalance::RoundRobin) | None => Balance::RoundRobin,
        };
        let health_check = raw
            .health_check
            .as_ref()
            .map(|h| self.health_check(&format!("{path}.health_check"), h));
        let passive = match &raw.passive {
            Some(p) => self.passive(&format!("{path}.passive"), p),
            None => PassiveHealth::default(),
        };
        let retry = self.retry(path, raw);
        Upstream {
            balance,
            health_check,
            passive,
            retry,
            ..Upstream::default()
        }
    }

    fn health_check(&mut self, path: &str, raw: &RawHealthCheck) -> HealthCheck {
        let check_path = raw
            .path
            .clone()
            .unwrap_or_else(|| DEFAULT_CHECK_PATH.to_owned());
        let valid_path = check_path.starts_with('/')
            && check_path
                .parse::<http::uri::PathAndQuery>()
                .is_ok_and(|pq| pq.as_str() == check_path);
        if !valid_path {
            self.issues.push(
                format!("{path}.path"),
                format!("`{check_path}` is not a request path (e.g. \"/health\")"),
            );
        }
        let interval_ms = match raw.interval_ms {
            Some(ms) if ms < MIN_CHECK_INTERVAL_MS => {
                self.issues.push(
                    format!("{path}.interval_ms"),
                    format!("must be at least {MIN_CHECK_INTERVAL_MS}"),
                );
                DEFAULT_CHECK_INTERVAL_MS
            }
            Some(ms) => ms,
            None => DEFAULT_CHECK_INTERVAL_MS,
        };
        let timeout_ms = match raw.timeout_ms {
            Some(0) => {
                self.issues
                    .push(format!("{path}.timeout_ms"), "must be greater than 0");
                DEFAULT_CHECK_TIMEOUT_MS
            }
            Some(ms) if ms > interval_ms => {
                self.issues.push(
                    format!("{path}.timeout_ms"),
                    format!("must not be longer than interval_ms ({interval_ms})"),
                );
                interval_ms
            }
            Some(ms) => ms,
            None => DEFAULT_CHECK_TIMEOUT_MS.min(interval_ms),
        };
        let healthy_threshold = self.at_least_one(
            &format!("{path}.healthy_threshold"),
            raw.healthy_threshold,
            DEFAULT_HEALTHY_THRESHOLD,
        );
        let unhealthy_threshold = self.at_least_one(
            &format!("{path}.unhealthy_threshold"),
            raw.unhealthy_threshold,
            DEFAULT_UNHEALTHY_THRESHOLD,
        );
        let expected_statuses = raw.expected_statuses.clone().unwrap_or_default();
        for (i, status) in expected_statuses.iter().enumerate() {
            if !(100..=599).contains(status) {
                self.issues.push(
                    format!("{path}.expected_statuses[{i}]"),
                    format!("{status} is not an HTTP status (100 to 599)"),
                );
            }
        }
        HealthCheck {
            path: check_path,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            healthy_threshold,
            unhealthy_threshold,
            expected_statuses,
        }
    }

    fn passive(&mut self, path: &str, raw: &RawPassive) -> PassiveHealth {
        let defaults = PassiveHealth::default();
        let ejection = self.millis(
            path,
            "ejection_ms",
            raw.ejection_ms,
            millis_of(defaults.ejection),
        );
        let max_ejection = match raw.max_ejection_ms {
            Some(ms) if Duration::from_millis(ms) < ejection => {
                self.issues.push(
                    format!("{path}.max_ejection_ms"),
                    format!("must be at least ejection_ms ({})", millis_of(ejection)),
                );
                ejection
            }
            Some(ms) => Duration::from_millis(ms),
            None => defaults.max_ejection.max(ejection),
        };
        PassiveHealth {
            max_failures: raw.max_failures.unwrap_or(defaults.max_failures),
            ejection,
            max_ejection,
            eject_on_5xx: raw.eject_on_5xx.unwrap_or(defaults.eject_on_5xx),
        }
    }

    fn retry(&mut self, path: &str, raw: &RawUpstream) -> RetryPolicy {
        let defaults = RetryPolicy::default();
        let retries = match raw.retries {
            Some(n) if n > MAX_RETRIES => {
                self.issues.push(
                    format!("{path}.retries"),
                    format!("must be at most {MAX_RETRIES}"),
                );
                defaults.retries
            }
            Some(n) => n,
            None => defaults.retries,
        };
        let methods = match &raw.retry_methods {
            None => defaults.methods,
            Some(names) => {
                let mut methods = Vec::new();
                for (i, m) in names.iter().enumerate() {
                    match Method::from_bytes(m.as_bytes()) {
                        Ok(method) if m.bytes().all(|b| b.is_ascii_uppercase()) => {
                            methods.push(method);
                        }
                        _ => self.issues.push(
                            format!("{path}.retry_methods[{i}]"),
                            format!("`{m}` is not an upper-case HTTP method"),
                        ),
                    }
                }
                methods
            }
        };
        let budget_percent = match raw.retry_budget_percent {
            Some(p) if p > 100 => {
                self.issues.push(
                    format!("{path}.retry_budget_percent"),
                    format!("{p} is not a percentage (0 to 100)"),
                );
                defaults.budget_percent
            }
            Some(p) => p,
            None => defaults.budget_percent,
        };
        RetryPolicy {
            retries,
            methods,
            budget_percent,
            budget_min_per_sec: raw
                .retry_budget_min_per_sec
                .unwrap_or(defaults.budget_min_per_sec),
        }
    }

    fn at_least_one(&mut self, path: &str, value: Option<u32>, default: u32) -> u32 {
        match value {
            Some(0) => {
                self.issues.push(path, "must be at least 1");
                default
            }
            Some(n) => n,
            None => default,
        }
    }
}

fn millis_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
