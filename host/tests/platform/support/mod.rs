//! Helpers for the platform scenarios: a gateway started in a directory with a bare `-c NAME`,
//! its admin address, reload counters from `/metrics`, and polling for a served response.
#![allow(dead_code)] // each scenario uses a different subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary_support::{Running, get, log_field, wait_for_line};

/// A gateway and its admin address.
pub struct Gateway {
    /// The child process, its log and its client-facing address.
    pub running: Running,
    /// The admin listener.
    pub admin: SocketAddr,
}

/// Start `tollgate run -c CONFIG` in `dir` (so a bare name is relative to it) and wait until
/// its listener and admin API are up.
pub fn spawn_in(dir: &Path, config: &str) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["run", "-c", config])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, log) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The listeners are bound (and logged) before the admin API.
    let addr = wait_for_line(&log, "\"listening\"").and_then(|line| log_field(&line, "addr"));
    let admin =
        wait_for_line(&log, "\"admin API listening\"").and_then(|line| log_field(&line, "addr"));
    let (Some(addr), Some(admin)) = (addr, admin) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the gateway did not log its addresses");
    };
    Gateway {
        running: Running { child, log, addr },
        admin,
    }
}

/// The value of one Prometheus series (`name{labels}`) on the admin API, 0 when absent.
pub fn metric(admin: SocketAddr, series: &str) -> u64 {
    let page = get(admin, "/metrics");
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Reloads done, rejected and skipped, as `/metrics` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloads {
    pub ok: u64,
    pub error: u64,
    pub skipped: u64,
}

pub fn reloads(admin: SocketAddr) -> Reloads {
    Reloads {
        ok: metric(admin, "tollgate_reloads_total{result=\"ok\"}"),
        error: metric(admin, "tollgate_reloads_total{result=\"error\"}"),
        skipped: metric(admin, "tollgate_reloads_skipped_total"),
    }
}

/// Poll `GET path` until the response contains `needle` (lower case); how long it took, or
/// `None` after `limit`.
pub fn served_within(
    addr: SocketAddr,
    path: &str,
    needle: &str,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if get(addr, path).contains(needle) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Copy the built-in `headers` plugin into `dir` and return its path.
pub fn copy_headers_plugin(dir: &Path) -> PathBuf {
    let plugins = crate::binary_support::build_plugins();
    let to = dir.join("headers.wasm");
    std::fs::copy(plugins.join("headers.wasm"), &to).unwrap();
    to
}

/// A config serving `/` from `upstream` through the `headers` plugin at `module`, which sets
/// `x-version: VERSION` on responses; admin API on a free port, file watching on.
pub fn config(module: &Path, upstream: SocketAddr, version: &str) -> String {
    format!(
        r#"[gateway]
watch = true

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{upstream}"]

[plugins.tag]
module = "{}"
config = {{ response = {{ set = {{ "x-version" = "{version}" }} }} }}

[[routes]]
name = "all"
path_prefix = "/"
upstream = "u"
chain = ["tag"]
"#,
        module.display()
    )
}

/// Send a signal to the gateway process.
pub fn signal(gateway: &Gateway, name: &str) {
    let pid = gateway.running.child.id().to_string();
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// `POST path` with an empty body; the whole response, lower-cased.
pub fn post(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out.to_ascii_lowercase()
}
