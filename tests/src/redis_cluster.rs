//! A real three-node Redis Cluster for tests: three `redis-server` processes in cluster mode on
//! free ports of 127.0.0.1, joined with `redis-cli --cluster create`, each primary serving a third
//! of the hash slots. The processes are killed when the [`RedisCluster`] is dropped.
//!
//! Needs Debian's `redis-server` and `redis-cli` (`apt-get install -y redis-server`; `.ci/run`
//! installs it when missing). Without them the test fails and says so.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the cluster may take to start and agree that every slot is served.
const STARTUP: Duration = Duration::from_secs(30);

/// Three primaries, no replicas. Dropping it kills the processes.
pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl RedisCluster {
    /// Start the three nodes, create the cluster and wait for `cluster_state:ok` on every node.
    /// Blocking work runs off the async runtime's worker.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// The nodes' URLs, `redis://127.0.0.1:PORT`, for `[state] nodes`.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The nodes' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `redis-cli -p PORT ARGS...` against one node, its output as text (`-c` follows
    /// redirections, so a key command works on any node).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = run(Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c"])
            .args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start_blocking() -> Self {
        require_redis_server();
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = free_port_pair();
            let child = spawn_node(cluster.dir.path(), port);
            cluster.ports.push(port);
            cluster.children.push(child);
        }
        for &port in &cluster.ports {
            cluster.wait_for(port, "PING", "PONG");
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = run(Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"]));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            cluster.logs()
        );
        for &port in &cluster.ports {
            cluster.wait_for(port, "CLUSTER INFO", "cluster_state:ok");
        }
        cluster
    }

    /// Poll one node with an inline command until its reply contains `want`.
    fn wait_for(&self, port: u16, command: &str, want: &str) {
        let deadline = Instant::now() + STARTUP;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = inline_command(port, command).unwrap_or_else(|e| e.to_string());
            if last.contains(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis node 127.0.0.1:{port} did not answer `{command}` with `{want}` within {} s; last reply: {last}\n{}",
            STARTUP.as_secs(),
            self.logs()
        );
    }

    /// Every node's log, for a failure message.
    fn logs(&self) -> String {
        self.ports
            .iter()
            .map(|p| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{p}.log")))
                    .unwrap_or_default();
                format!("--- redis node {p} log ---\n{log}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn require_redis_server() {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "redis-server is not installed: this test starts a three-node Redis Cluster from Debian's \
         redis-server and redis-cli (apt-get install -y redis-server; .ci/run installs it)"
    );
}

/// A port whose cluster bus port (port + 10000) is free too. Both are released before the node
/// binds them; a clash with another process in between fails the test at start-up, visibly.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair (port, port + 10000) on 127.0.0.1");
}

fn spawn_node(dir: &Path, port: u16) -> Child {
    let file = |name: String| dir.join(name).display().to_string();
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", &file(format!("nodes-{port}.conf"))])
        .args(["--cluster-node-timeout", "5000"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", &dir.display().to_string()])
        .args(["--logfile", &file(format!("{port}.log"))])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start redis-server on port {port}: {e}"))
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not run {command:?}: {e}"))
}

/// One inline command on a fresh connection; the raw reply (read until a short quiet moment).
fn inline_command(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(_) if !reply.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}
