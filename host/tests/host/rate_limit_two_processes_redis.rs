//! Two `tollgate` processes sharing one Redis enforce one rate limit together: exactly the limit
//! is admitted in total, whichever process a request reaches.

#![allow(clippy::unwrap_used)]

use crate::binary_support;

use binary_support::{build_plugins, get, spawn_gateway, upstream};

#[test]
fn two_gateway_processes_share_one_limit_through_redis() {
    let plugin_dir = build_plugins();
    let upstream = upstream();
    let prefix = format!(
        "tollgate-test-2proc-{}-{}:",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[gateway]
plugin_dir = "{}"
watch = false

[state]
backend = "redis"
url = "redis://127.0.0.1:6379"
key_prefix = "{prefix}"
timeout_ms = 2000

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{upstream}"]

[plugins.limit]
module = "rate-limit"
timeout_ms = 1000
[plugins.limit.config]
limit = 10
period = "1h"
key = ["route"]

[[routes]]
name = "api"
path_prefix = "/"
upstream = "u"
chain = ["limit"]
"#,
        plugin_dir.display()
    );
    let (path_a, path_b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&path_a, &config).unwrap();
    std::fs::write(&path_b, &config).unwrap();
    let a = spawn_gateway(&path_a);
    let b = spawn_gateway(&path_b);

    let (mut admitted, mut limited) = (0, 0);
    for i in 0..30 {
        let gateway = if i % 2 == 0 { &a } else { &b };
        let reply = get(gateway.addr, "/x");
        if reply.starts_with("http/1.1 200") {
            admitted += 1;
        } else if reply.starts_with("http/1.1 429") {
            limited += 1;
        } else {
            panic!("unexpected reply: {reply}");
        }
    }
    assert_eq!((admitted, limited), (10, 20));
}
