//! Redis goes away mid-test (a private `redis-server` on a free port, never the shared one):
//! a plugin with `on_state_error = "fail-open"` keeps its own answer, one with `fail-closed` gets
//! 503 `state_unavailable`, both within the state timeout; when Redis comes back on the same
//! port, both recover.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_tests::{Gateway, Reply, Upstream, get};

/// A `redis-server` child process, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn config(upstream: &str, port: u16) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[state]
backend = "redis"
url = "redis://127.0.0.1:{port}"
timeout_ms = 50
key_prefix = "outage:"

[upstreams.echo]
targets = ["{upstream}"]

[plugins.open]
module = "{{fixtures}}/limiter.wasm"
on_state_error = "fail-open"
config = {{ mode = "take", key = "b", capacity = 1000, refill_per_second = 100.0 }}

[plugins.closed]
module = "{{fixtures}}/limiter.wasm"
on_state_error = "fail-closed"
config = {{ mode = "incr", key = "n", limit = 1000 }}

[[routes]]
name = "open"
path_prefix = "/open"
upstream = "echo"
chain = ["open"]

[[routes]]
name = "closed"
path_prefix = "/closed"
upstream = "echo"
chain = ["closed"]
"#
    )
}

fn limiter_header(reply: &Reply) -> String {
    reply.json()["headers"]["x-limiter"][0]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_then_back() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start(&config(&upstream.target(), port)).await;

    let reply = get(&gateway.url("/open"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(limiter_header(&reply), "ok");
    let reply = get(&gateway.url("/closed"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(limiter_header(&reply), "ok");

    redis.stop();
    // Timeout 50 ms, plus generous margin for a debug build on a busy 2-core machine.
    let bound = Duration::from_millis(50 + 950);
    for _ in 0..5 {
        let started = Instant::now();
        let reply = get(&gateway.url("/open"), &[]).await;
        assert!(started.elapsed() < bound, "{:?}", started.elapsed());
        assert_eq!(reply.status, 200, "fail-open keeps the plugin's action");
        assert_eq!(limiter_header(&reply), "error");

        let started = Instant::now();
        let reply = get(&gateway.url("/closed"), &[]).await;
        assert!(started.elapsed() < bound, "{:?}", started.elapsed());
        assert_eq!(reply.status, 503);
        let body = reply.json();
        assert_eq!(body["error"], "state_unavailable");
        assert_eq!(body["plugin"], "closed");
    }

    let _redis = RedisServer::start(redis.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let closed = get(&gateway.url("/closed"), &[]).await;
        let open = get(&gateway.url("/open"), &[]).await;
        if closed.status == 200 && limiter_header(&open) == "ok" {
            assert_eq!(limiter_header(&closed), "ok");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: closed {} open {}",
            closed.status,
            limiter_header(&open)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.shutdown().await;
}
