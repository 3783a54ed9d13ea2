//! Credentials stay out of what operators read and clients see: `/admin/config` masks
//! `authorization`, `proxy-authorization` and `cookie` values and the passwords and tokens in
//! URLs of plugin configs; a 504 or 502 names the upstream, never its internal `host:port`; API
//! keys passed in the query string are masked in the access log (the auth plugin's own query
//! parameter and the common names `api_key`, `apikey`, `key`, `token`, `access_token`).

use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, Upstream, dead_port, get};

use crate::edge_support::raw;

fn read_log(path: &std::path::Path, want: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= want {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {} lines:\n{text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gateway_config(fast: &Upstream, slow: &Upstream, dead: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[access_log]
destination = "file"
path = "access.log"

[upstreams.echo]
targets = ["{fast}"]

[upstreams.slow]
targets = ["{slow}"]
request_timeout_ms = 200

[upstreams.gone]
targets = ["{dead}"]
connect_timeout_ms = 200

[plugins.creds]
module = "{{plugins}}/headers.wasm"
[plugins.creds.config.request.set]
Authorization = "Bearer s3cr3t-bearer"
Proxy-Authorization = "Basic s3cr3t-basic"
Cookie = "session=s3cr3t-cookie"
x-callback = "https://hook:s3cr3t-pw@hooks.example/cb?token=s3cr3t-token&v=1"
x-plain = "visible"

[plugins.auth]
module = "{{plugins}}/auth.wasm"
[plugins.auth.config.api_key]
query = "access"
[[plugins.auth.config.api_key.keys]]
hash = "bd0edab034bd69aab2e87b0abd396c2612156d394a958310d04348b35f6c224a"
consumer = "ops"

[[routes]]
name = "open"
path_prefix = "/"
upstream = "echo"
chain = ["creds"]

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "echo"
chain = ["auth"]

[[routes]]
name = "slow"
path_prefix = "/slow"
upstream = "slow"

[[routes]]
name = "gone"
path_prefix = "/gone"
upstream = "gone"
"#,
        fast = fast.target(),
        slow = slow.target(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_config_errors_and_the_access_log_keep_credentials_out() {
    let fast = Upstream::echo("echo").await;
    let slow = Upstream::slow("slow", Duration::from_secs(3)).await;
    let dead = dead_port().await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let gateway = Gateway::start_in(dir, &gateway_config(&fast, &slow, &dead)).await;
    let admin = gateway.admin.unwrap();

    // /admin/config
    let reply = get(&format!("http://{admin}/admin/config"), &[]).await;
    assert_eq!(reply.status, 200);
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(!text.contains("s3cr3t"), "a credential is shown: {text}");
    let set = &reply.json()["plugins"]["creds"]["config"]["request"]["set"];
    assert_eq!(set["Authorization"], "***");
    assert_eq!(set["Proxy-Authorization"], "***");
    assert_eq!(set["Cookie"], "***");
    assert_eq!(
        set["x-callback"],
        "https://hook:***@hooks.example/cb?token=***&v=1"
    );
    assert_eq!(set["x-plain"], "visible");

    // 504 and 502 name the upstream, not where it lives.
    for (path, status, upstream, address) in [
        ("/slow", 504, "slow", slow.target()),
        ("/gone", 502, "gone", dead.clone()),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
        let reply = raw(gateway.addr, request.as_bytes()).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(reply.json()["upstream"], upstream);
        let port = address.rsplit(':').next().unwrap();
        assert!(
            !reply.body.contains(&address) && !reply.body.contains(port),
            "{path}: the answer names {address}: {}",
            reply.body
        );
    }

    // The access log masks API keys in the query string.
    for path in [
        "/x?api_key=s3cr3t-a&page=2",
        "/x?page=3&TOKEN=s3cr3t-b&apikey=s3cr3t-c&key=s3cr3t-d&access_token=s3cr3t-e",
        "/private?access=s3cr3t-f",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
        raw(gateway.addr, request.as_bytes()).await;
    }
    let lines = read_log(&log_path, 5);
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().all(|l| !l.contains("s3cr3t")),
        "a key reached the access log: {text:#?}"
    );
    let queries: Vec<&str> = lines.iter().filter_map(|l| l["query"].as_str()).collect();
    assert!(queries.contains(&"api_key=***&page=2"), "{queries:?}");
    assert!(
        queries.contains(&"page=3&TOKEN=***&apikey=***&key=***&access_token=***"),
        "{queries:?}"
    );
    assert!(queries.contains(&"access=***"), "{queries:?}");
    gateway.shutdown().await;
}
