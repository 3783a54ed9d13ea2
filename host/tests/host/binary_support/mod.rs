//! Helpers for tests that run the `tollgate` binary itself: build the built-in plugins, start the
//! gateway as a child process, read its JSON log, and speak raw HTTP/1.1.
#![allow(dead_code)] // each test crate uses a different subset
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Build `plugins/` for wasm32-wasip2 and return the directory of the `.wasm` files.
pub fn build_plugins() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // `scripts/test.sh` built them just before (see `tollgate_tests::prebuilt`).
    if std::env::var_os("TOLLGATE_WASM_PREBUILT").is_some_and(|v| v == "1") {
        return root.join("plugins/target/wasm32-wasip2/release");
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .current_dir(root.join("plugins"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "building the plugins failed");
    root.join("plugins/target/wasm32-wasip2/release")
        .canonicalize()
        .unwrap()
}

/// A one-thread upstream: answers every request with 200 `ok` and closes the connection.
pub fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    addr
}

/// An upstream that waits `delay` before answering each request with 200 `slow-ok` (one thread
/// per connection, so requests overlap).
pub fn slow_upstream(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nslow-ok",
                );
            });
        }
    });
    addr
}

/// GET a path with a raw HTTP/1.1 request addressed (`Host`) to `addr`, as curl sends it; the whole response (head and body), lower-cased.
pub fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out.to_ascii_lowercase()
}

/// A `tollgate run` child process and its log lines.
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its stderr (JSON log), line by line.
    pub log: Receiver<String>,
    /// The first client-facing address it logged.
    pub addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `tollgate run -c CONFIG` and wait until it logs its listening address.
pub fn spawn_gateway(config: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["run", "-c"])
        .arg(config)
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
    let addr = wait_for_line(&log, "\"listening\"")
        .and_then(|line| log_field(&line, "addr"))
        .expect("gateway logged its address");
    Running { child, log, addr }
}

/// A field of a JSON log line, parsed.
pub fn log_field(line: &str, field: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v["fields"][field].as_str()?.parse().ok()
}

/// The next log line containing `needle`, within a minute.
pub fn wait_for_line(rx: &Receiver<String>, needle: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Some(line),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}
