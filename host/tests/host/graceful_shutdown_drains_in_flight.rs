//! `tollgate run` gets SIGTERM while a slow request is in flight: it stops accepting at once,
//! finishes that request with 200 and `Connection: close` (HTTP/1 keep-alive), sends GOAWAY to
//! an idle HTTP/2 client, and exits 0 once the request is done.

#![allow(clippy::unwrap_used)]

use crate::binary_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use binary_support::{slow_upstream, spawn_gateway, wait_for_line};

const UPSTREAM_DELAY: Duration = Duration::from_secs(3);

fn config(dir: &std::path::Path, upstream: SocketAddr) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[server]
drain_timeout_ms = 20000

[upstreams.slow]
targets = ["{upstream}"]
request_timeout_ms = 20000

[[routes]]
name = "all"
path_prefix = "/"
upstream = "slow"
"#,
        dir.join("cache").display()
    )
}

/// A keep-alive HTTP/1.1 GET; the whole exchange until the server closes, lower-cased.
fn keep_alive_get(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// An HTTP/2 (prior knowledge) client that opens a connection, sends no request, and reads
/// frames until it sees GOAWAY (true) or the connection ends (false).
fn idle_h2_sees_goaway(addr: SocketAddr, ready: mpsc::Sender<()>) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    // An empty SETTINGS frame: length 0, type 4, flags 0, stream 0.
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let mut told = false;
    loop {
        let mut header = [0u8; 9];
        if stream.read_exact(&mut header).is_err() {
            return false;
        }
        let length =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let mut payload = vec![0u8; length];
        if stream.read_exact(&mut payload).is_err() {
            return false;
        }
        match kind {
            // SETTINGS without ACK: acknowledge, then the connection is established.
            4 if flags & 1 == 0 => {
                stream.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).unwrap();
                if !told {
                    told = true;
                    let _ = ready.send(());
                }
            }
            7 => return true,
            _ => {}
        }
    }
}

#[test]
fn sigterm_finishes_the_slow_request_refuses_new_connections_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(dir.path(), slow_upstream(UPSTREAM_DELAY))).unwrap();
    let mut gateway = spawn_gateway(&path);
    let addr = gateway.addr;

    let (h2_ready_tx, h2_ready) = mpsc::channel();
    let h2 = std::thread::spawn(move || idle_h2_sees_goaway(addr, h2_ready_tx));
    h2_ready
        .recv_timeout(Duration::from_secs(10))
        .expect("h2 connection established");

    let (done_tx, done) = mpsc::channel();
    let slow = std::thread::spawn(move || {
        let answer = keep_alive_get(addr);
        let _ = done_tx.send(Instant::now());
        answer
    });
    // Let the request reach the upstream, then signal.
    std::thread::sleep(Duration::from_millis(800));
    let pid = gateway.child.id().to_string();
    let signalled = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(wait_for_line(&gateway.log, "shutting down").is_some());

    // New connections are refused while the slow request is still in flight.
    let refused_by = Instant::now() + Duration::from_secs(2);
    loop {
        match TcpStream::connect(addr) {
            // Refused by the OS; or reset when the listener closed with the connection still
            // in its backlog.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                ) =>
            {
                break;
            }
            Err(e) => panic!("unexpected connect error: {e}"),
            Ok(_) => {
                assert!(Instant::now() < refused_by, "still accepting after SIGTERM");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    assert!(
        done.try_recv().is_err(),
        "the slow request ended before new connections were refused"
    );

    // The in-flight request completes normally, told to close its keep-alive connection.
    let answer = slow.join().unwrap();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.ends_with("slow-ok"), "{answer}");
    let head = answer.split("\r\n\r\n").next().unwrap();
    assert!(head.contains("\r\nconnection: close"), "{head}");
    let answered = done.recv().unwrap();
    assert!(
        answered.duration_since(signalled) >= UPSTREAM_DELAY.mul_f32(0.5),
        "answered too soon after SIGTERM for a {UPSTREAM_DELAY:?} upstream"
    );

    // The idle HTTP/2 client was told to go away.
    assert!(
        h2.join().unwrap(),
        "no GOAWAY on the idle HTTP/2 connection"
    );

    // The process exits 0, after the request finished.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no exit within 15 s of the last answer"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(wait_for_line(&gateway.log, "drained").is_some());
}
