//! A gateway with an admin listener, one echo upstream and the plugins and routes a scenario
//! gives; helpers to read `/metrics` and the process's resident memory.

use tollgate_tests::{Gateway, Upstream, get};

/// A gateway whose upstream `up` is `upstream`, with `[admin]`, plus `extra` (plugins, routes,
/// `[limits]`) appended to the base config.
pub async fn gateway(upstream: &Upstream, extra: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.up]
targets = ["{target}"]

{extra}
"#,
        target = upstream.target()
    ))
    .await
}

/// Resident set size of this process (the gateway runs in it), in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// The `/metrics` text.
pub async fn metrics(gateway: &Gateway) -> String {
    let admin = gateway.admin.expect("admin listener");
    let reply = get(&format!("http://{admin}/metrics"), &[]).await;
    assert_eq!(reply.status, 200);
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// The value of the first series of `name` whose labels contain every `labels` pair (0 when
/// there is none).
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// How often `plugin` hit the cap `limit` (`tollgate_plugin_limit_exceeded_total`).
pub async fn limit_hits(gateway: &Gateway, plugin: &str, limit: &str) -> f64 {
    let text = metrics(gateway).await;
    value(
        &text,
        "tollgate_plugin_limit_exceeded_total",
        &[("plugin", plugin), ("limit", limit)],
    )
}
