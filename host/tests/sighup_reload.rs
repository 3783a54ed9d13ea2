//! The `tollgate` binary reloads its config on SIGHUP and drains on SIGTERM, exiting 0.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A one-thread HTTP/1.0-style upstream: answers every request with 200 and closes.
fn upstream() -> SocketAddr {
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

/// GET a path with a raw HTTP/1.1 request; returns the response head and body as text.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out.to_ascii_lowercase()
}

fn config(plugin_dir: &Path, upstream: SocketAddr, version: &str) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{upstream}"]

[plugins.tag]
module = "headers"
config = {{ response = {{ set = {{ "x-version" = "{version}" }} }} }}

[[routes]]
name = "all"
path_prefix = "/"
upstream = "u"
chain = ["tag"]
"#,
        plugin_dir.display()
    )
}

#[test]
fn sighup_reloads_and_sigterm_exits_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .current_dir(root.join("plugins"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success());
    let plugin_dir = root
        .join("plugins/target/wasm32-wasip2/release")
        .canonicalize()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let upstream = upstream();
    std::fs::write(&path, config(&plugin_dir, upstream, "one")).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["run", "-c"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = wait_for_line(&rx, "\"listening\"")
        .and_then(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            v["fields"]["addr"].as_str()?.parse::<SocketAddr>().ok()
        })
        .expect("gateway logged its address");

    assert!(get(addr, "/x").contains("x-version: one"));

    std::fs::write(&path, config(&plugin_dir, upstream, "two")).unwrap();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        wait_for_line(&rx, "\"reloaded\"").is_some(),
        "no reload logged after SIGHUP"
    );
    assert!(get(addr, "/x").contains("x-version: two"));

    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> Option<String> {
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
