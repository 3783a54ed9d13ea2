//! The `tollgate` binary as a real process: built once per test process, its output kept and
//! printed when a test fails, its client listener's address read from its log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `tollgate` binary, built once per test process when needed. Under `scripts/test.sh`
/// (`TOLLGATE_WASM_PREBUILT=1`) `cargo nextest run --workspace` has just built it with the
/// workspace's features; building it again with only its own package's features would rebuild
/// it (and its TLS stack) in every test process, for minutes on two cores.
pub fn tollgate_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/debug/deps/control-HASH → target/debug/tollgate
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap().to_owned();
        if crate::prebuilt() && dir.join("tollgate").exists() {
            return dir.join("tollgate");
        }
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "tollgate", "--bin", "tollgate"])
            .current_dir(crate::repo_root())
            .status()
            .expect("run cargo to build the tollgate binary");
        assert!(status.success(), "building the tollgate binary failed");
        dir.join("tollgate")
    })
    .clone()
}

/// A child process whose output lines are kept.
pub struct Proc {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Start `tollgate ARGS` with `envs`.
    pub fn spawn(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(tollgate_bin());
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for reader in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// Wait for an output line for which `find` gives a value.
    pub fn wait_for<T>(&self, timeout: Duration, find: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.lines.lock().unwrap().iter().find_map(|l| find(l)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{}: expected output did not come:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("----- output of {} -----\n{}", self.name, self.output());
        }
    }
}

/// The client listener's address in a `"listening"` JSON log line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    (fields.get("message")?.as_str()? == "listening").then_some(())?;
    fields.get("addr")?.as_str()?.parse().ok()
}
