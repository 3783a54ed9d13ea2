//! `[state]`: where plugins' shared state lives, in memory, in Redis or in a Redis Cluster.

use std::time::Duration;

use super::Validator;
use crate::config::model::StateSettings;
use crate::config::raw::{RawState, RawStateBackend};

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_STATE_TIMEOUT_MS: u64 = 50;
const MAX_STATE_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_REDIS_KEY_PREFIX: &str = "tollgate:";
const DEFAULT_WRITE_BEHIND_MS: u64 = 100;
const MAX_WRITE_BEHIND_MS: u64 = 60_000;

impl Validator<'_> {
    /// `[state]`: memory unless `backend = "redis"` or `"redis-cluster"`; each setting only with
    /// the backend that uses it (`url` for Redis, `nodes` for a cluster).
    pub(super) fn state(&mut self, value: Option<toml::Value>) -> StateSettings {
        let Some(value) = value else {
            return StateSettings::Memory;
        };
        let Some(raw) = self.de::<RawState>("state", value) else {
            return StateSettings::Memory;
        };
        let backend = raw.backend.unwrap_or(RawStateBackend::Memory);
        self.state_extras(&raw, backend);
        match backend {
            RawStateBackend::Memory => StateSettings::Memory,
            RawStateBackend::Redis => {
                let url = raw.url.unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
                if let Err(e) = redis::Client::open(url.as_str()) {
                    self.issues.push(
                        "state.url",
                        format!(
                            "`{url}` is not a usable Redis URL (redis://host:port[/db], or rediss:// for TLS): {e}"
                        ),
                    );
                }
                StateSettings::Redis {
                    url,
                    timeout: self.state_timeout(raw.timeout_ms),
                    key_prefix: raw
                        .key_prefix
                        .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned()),
                    write_behind: self.write_behind(raw.write_behind_ms),
                }
            }
            RawStateBackend::RedisCluster => {
                let nodes = raw.nodes.unwrap_or_default();
                self.cluster_nodes(&nodes);
                StateSettings::RedisCluster {
                    nodes,
                    timeout: self.state_timeout(raw.timeout_ms),
                    key_prefix: raw
                        .key_prefix
                        .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned()),
                    write_behind: self.write_behind(raw.write_behind_ms),
                }
            }
        }
    }

    /// Refuse the settings the chosen backend does not use.
    fn state_extras(&mut self, raw: &RawState, backend: RawStateBackend) {
        let redis = matches!(backend, RawStateBackend::Redis);
        let cluster = matches!(backend, RawStateBackend::RedisCluster);
        let either = "is only used with backend = \"redis\" or \"redis-cluster\"";
        let checks = [
            (
                "url",
                raw.url.is_some() && !redis,
                if cluster {
                    "is not used with backend = \"redis-cluster\": list the cluster's nodes in `nodes`"
                } else {
                    "is only used with backend = \"redis\""
                },
            ),
            (
                "nodes",
                raw.nodes.is_some() && !cluster,
                if redis {
                    "is only used with backend = \"redis-cluster\" (one Redis takes `url`)"
                } else {
                    "is only used with backend = \"redis-cluster\""
                },
            ),
            (
                "timeout_ms",
                raw.timeout_ms.is_some() && !redis && !cluster,
                either,
            ),
            (
                "key_prefix",
                raw.key_prefix.is_some() && !redis && !cluster,
                either,
            ),
            (
                "write_behind_ms",
                raw.write_behind_ms.is_some() && !redis && !cluster,
                "is only used with backend = \"redis\" or \"redis-cluster\" (the memory backend applies `add-many` at once)",
            ),
        ];
        for (field, wrong, message) in checks {
            if wrong {
                self.issues.push(format!("state.{field}"), message);
            }
        }
    }

    /// `write_behind_ms`: 0 (each `add-many` waits for Redis) up to a minute; 100 by default.
    fn write_behind(&mut self, ms: Option<u64>) -> Duration {
        let ms = match ms {
            Some(ms) if ms > MAX_WRITE_BEHIND_MS => {
                self.issues.push(
                    "state.write_behind_ms",
                    format!("must be between 0 (off) and {MAX_WRITE_BEHIND_MS}"),
                );
                DEFAULT_WRITE_BEHIND_MS
            }
            Some(ms) => ms,
            None => DEFAULT_WRITE_BEHIND_MS,
        };
        Duration::from_millis(ms)
    }

    fn state_timeout(&mut self, timeout_ms: Option<u64>) -> Duration {
        let ms = match timeout_ms {
            Some(ms) if !(1..=MAX_STATE_TIMEOUT_MS).contains(&ms) => {
                self.issues.push(
                    "state.timeout_ms",
                    format!("must be between 1 and {MAX_STATE_TIMEOUT_MS}"),
                );
                DEFAULT_STATE_TIMEOUT_MS
            }
            Some(ms) => ms,
            None => DEFAULT_STATE_TIMEOUT_MS,
        };
        Duration::from_millis(ms)
    }

    /// `nodes`: at least one seed, each a `redis://` or `rediss://` URL of a host and port
    /// (a cluster has only database 0), all with the same TLS mode and credentials.
    fn cluster_nodes(&mut self, nodes: &[String]) {
        if nodes.is_empty() {
            self.issues.push(
                "state.nodes",
                "backend = \"redis-cluster\" needs at least one seed node, e.g. nodes = [\"redis://10.0.0.1:6379\", \"redis://10.0.0.2:6379\"]",
            );
            return;
        }
        let mut each_ok = true;
        for (i, node) in nodes.iter().enumerate() {
            if let Some(problem) = cluster_node_problem(node) {
                self.issues.push(format!("state.nodes[{i}]"), problem);
                each_ok = false;
            }
        }
        if each_ok
            && let Err(e) = redis::cluster::ClusterClient::new(nodes.iter().map(String::as_str))
        {
            self.issues.push(
                "state.nodes",
                format!("the nodes cannot be used together (the same scheme, user and password on every node): {e}"),
            );
        }
    }
}

/// Why one seed URL cannot be used, if it cannot.
fn cluster_node_problem(node: &str) -> Option<String> {
    let Some(rest) = node
        .strip_prefix("redis://")
        .or_else(|| node.strip_prefix("rediss://"))
    else {
        return Some(format!(
            "`{node}` is not a Redis Cluster node URL: expected redis://host:port or rediss://host:port"
        ));
    };
    if let Err(e) = redis::Client::open(node) {
        return Some(format!(
            "`{node}` is not a usable Redis URL (redis://host:port, or rediss:// for TLS): {e}"
        ));
    }
    // What follows the authority is the database: a cluster has only database 0.
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let db = path.split_once('/').map_or("", |(_, db)| db);
    if !matches!(db, "" | "0") {
        return Some(format!(
            "`{node}` names database `{db}`: a Redis Cluster has only database 0 (drop `/{db}`)"
        ));
    }
    None
}
