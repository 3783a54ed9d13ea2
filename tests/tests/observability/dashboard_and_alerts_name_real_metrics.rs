//! The shipped Grafana dashboard (`docs/grafana/*.json`) and Prometheus rules
//! (`docs/prometheus/alerts.yml`) cannot drift from the code: every metric they query is in a real
//! gateway's `/metrics` after traffic that touches each feature (plugins, a trap, rate limiting,
//! a plugin past a host limit, a dead upstream target, a Redis that is down, trace export to a collector that is down), and
//! the dashboard has what Grafana needs to import it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, Upstream, dead_port, get, repo_root};

use super::support::metrics;

/// `tollgate_*` names in a query text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("tollgate_") {
        let start = i + found;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        names.insert(text[start..end].to_owned());
        i = end;
    }
    names
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = repo_root().join("docs/grafana");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            found.push((path.display().to_string(), json));
        }
    }
    assert!(!found.is_empty(), "no dashboard in {}", dir.display());
    found
}

#[test]
fn dashboard_has_what_grafana_needs() {
    for (path, d) in dashboards() {
        for key in ["uid", "title"] {
            assert!(
                d[key].as_str().is_some_and(|s| !s.is_empty()),
                "{path}: {key}"
            );
        }
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 30),
            "{path}: schemaVersion"
        );
        let variables = d["templating"]["list"].as_array().unwrap();
        assert!(
            variables
                .iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{path}: a Prometheus datasource variable"
        );
        let panels = d["panels"].as_array().unwrap();
        assert!(panels.len() >= 8, "{path}: {} panels", panels.len());
        let mut ids = BTreeSet::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap();
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{path}: duplicate id at {title}"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{path}: {title}"
            );
            for key in ["h", "w", "x", "y"] {
                assert!(
                    panel["gridPos"][key].is_u64(),
                    "{path}: {title} gridPos.{key}"
                );
            }
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{path}: {title} has no targets");
            for target in targets {
                let expr = target["expr"].as_str().unwrap();
                assert!(!metric_names(expr).is_empty(), "{path}: {title}: {expr}");
                assert!(target["refId"].as_str().is_some(), "{path}: {title}");
            }
        }
    }
}

const TRAFFIC: &str = r#"
[gateway]
cache_dir = "{cache}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[telemetry]
endpoint = "http://{dead}"

[upstreams.u]
targets = ["{target}", "{dead}"]
retries = 1

[plugins.rec]
module = "{fixtures}/recorder.wasm"
config = { name = "rec" }

[plugins.trap]
module = "{fixtures}/trapper.wasm"
config = { trigger_header = "x-hostile" }

[plugins.lim]
module = "{fixtures}/limiter.wasm"
config = { key = "dashboard-limit", capacity = 1, refill_per_second = 0.001 }

[plugins.abuse]
module = "{fixtures}/abuser.wasm"
config = { mode = "respond-status", status = 101 }

[[routes]]
name = "abuse"
path_prefix = "/abuse"
upstream = "u"
chain = ["abuse"]

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "u"
chain = ["rec", "trap"]

[[routes]]
name = "limited"
path_prefix = "/limited"
upstream = "u"
chain = ["lim"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_name_metrics_the_gateway_exports() {
    let upstream = Upstream::echo("u").await;
    let dead = dead_port().await.to_string();
    let config = TRAFFIC
        .replace("{target}", &upstream.target())
        .replace("{dead}", &dead);
    let gateway = Gateway::start(&config).await;
    // The same metrics registry serves every gateway of this process: a second gateway whose
    // Redis is down adds the state backend's errors and its write-behind series.
    let redis_down = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[state]
backend = "redis"
url = "redis://{dead}"
timeout_ms = 50

[upstreams.u]
targets = ["{target}"]

[plugins.lim]
module = "{{fixtures}}/limiter.wasm"
config = {{ key = "dashboard-redis", capacity = 5, refill_per_second = 1.0 }}

[[routes]]
name = "limited"
path_prefix = "/"
upstream = "u"
chain = ["lim"]
"#,
        target = upstream.target(),
    ))
    .await;

    for _ in 0..5 {
        assert_eq!(get(&gateway.url("/api/ok"), &[]).await.status, 200);
    }
    assert_eq!(
        get(&gateway.url("/api/bad"), &[("x-hostile", "1")])
            .await
            .status,
        500
    );
    assert_eq!(get(&gateway.url("/limited"), &[]).await.status, 200);
    assert_eq!(get(&gateway.url("/limited"), &[]).await.status, 429);
    // A 1xx reply is past what the host accepts from a plugin (a limit, counted).
    assert_eq!(get(&gateway.url("/abuse"), &[]).await.status, 500);
    let reply = get(&redis_down.url("/x"), &[]).await;
    assert_eq!(reply.status, 503, "{reply:?}");

    let mut wanted = BTreeSet::new();
    for (_, d) in dashboards() {
        for panel in d["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                wanted.extend(metric_names(target["expr"].as_str().unwrap()));
            }
        }
    }
    let rules = std::fs::read_to_string(repo_root().join("docs/prometheus/alerts.yml")).unwrap();
    wanted.extend(metric_names(&rules));
    println!("{} metric names in the dashboard and rules", wanted.len());

    // Trace export failures are counted by a background task: wait for them.
    let admin = gateway.admin.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let missing = loop {
        let text = metrics(admin).await;
        let exported: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let missing: Vec<_> = wanted
            .iter()
            .filter(|name| !exported.contains(name.as_str()))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(missing.is_empty(), "not in /metrics: {missing:?}");
    redis_down.shutdown().await;
    gateway.shutdown().await;
}
