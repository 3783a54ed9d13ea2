//! Real processes for the control plane tests: the `tollgate` binary as control plane
//! (`tollgate control`) and as following gateways (`tollgate run --control`), a fresh SQLite
//! file or PostgreSQL database per test, the control API over HTTP, and the `ctl` client.
//! Every process's output is kept and printed when a test fails.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
pub use tollgate_tests::process::{Proc, listening_addr, tollgate_bin};
use tollgate_tests::{Reply, client, send};

/// The bootstrap admin token of every test control plane.
pub const ADMIN: &str = "tg-test-admin-token-0123456789abcdef";

/// A fresh database: a SQLite file, or a PostgreSQL database dropped at the end.
pub struct Database {
    /// The URL `tollgate control --database` takes.
    pub url: String,
    pg: Option<String>,
    _dir: tempfile::TempDir,
}

impl Database {
    /// A SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("control.db").display());
        Self {
            url,
            pg: None,
            _dir: dir,
        }
    }

    /// A new database on the local PostgreSQL (127.0.0.1:5432, user postgres, trust auth).
    pub fn postgres() -> Self {
        let name = format!("tg_{}_{}", std::process::id(), rand_suffix());
        psql(&format!("CREATE DATABASE {name}"));
        Self {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            pg: Some(name),
            _dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(name) = &self.pg {
            psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() % 1_000_000_000
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `tollgate control` process.
pub struct ControlPlane {
    /// The process (None while stopped).
    pub proc: Option<Proc>,
    /// Where it listens.
    pub addr: SocketAddr,
    database: String,
    work: tempfile::TempDir,
    tls: Vec<String>,
}

impl ControlPlane {
    /// Start on a free port with a database.
    pub fn start(db: &Database) -> Self {
        Self::start_with(db, &[])
    }

    /// Start with extra arguments (TLS).
    pub fn start_with(db: &Database, extra: &[&str]) -> Self {
        let mut cp = Self {
            proc: None,
            addr: ([127, 0, 0, 1], 0).into(),
            database: db.url.clone(),
            work: tempfile::tempdir().unwrap(),
            tls: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        cp.restart();
        cp
    }

    /// Start again (on the same port when it had one).
    pub fn restart(&mut self) {
        let listen = self.addr.to_string();
        let work = self.work.path().display().to_string();
        let mut args = vec![
            "control",
            "--listen",
            &listen,
            "--database",
            &self.database,
            "--work-dir",
            &work,
        ];
        args.extend(self.tls.iter().map(String::as_str));
        let proc = Proc::spawn("control", &args, &[("TOLLGATE_ADMIN_TOKEN", ADMIN)]);
        self.addr = proc.wait_for(Duration::from_secs(30), |l| {
            l.strip_prefix("control plane listening on ")
                .and_then(|a| a.trim().parse().ok())
        });
        self.proc = Some(proc);
    }

    /// Stop it hard.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Call the API with `token`.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let url = format!("{}{path}", self.url());
        send(
            &client(),
            method,
            &url,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Create a token with `role`; its secret.
    pub async fn token(&self, name: &str, role: &str) -> String {
        let r = self
            .api(
                Method::POST,
                "/v1/tokens",
                ADMIN,
                Some(serde_json::json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()["token"].as_str().unwrap().to_owned()
    }

    /// Create a consumer and a key for it; (key id, key).
    pub async fn consumer_with_key(&self, token: &str, name: &str) -> (String, String) {
        let body = serde_json::json!({"name": name, "roles": ["user"], "plan": "gold"});
        let r = self
            .api(Method::POST, "/v1/consumers", token, Some(body))
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let r = self
            .api(
                Method::POST,
                &format!("/v1/consumers/{name}/keys"),
                token,
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Run `tollgate ctl ARGS` against it with `token`: (exit code, stdout, stderr).
    pub fn ctl(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        self.ctl_at(&self.url(), token, args)
    }

    /// `tollgate ctl --url URL ARGS`.
    pub fn ctl_at(&self, url: &str, token: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(tollgate_bin())
            .args(["ctl", "--url", url])
            .args(args)
            .env("TOLLGATE_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Write `config` into a temporary file and `ctl apply` it; panics unless it was stored.
pub fn apply(cp: &ControlPlane, token: &str, dir: &Path, config: &str, message: &str) {
    let file = dir.join("gateway.toml");
    std::fs::write(&file, config).unwrap();
    let (code, out, err) = cp.ctl(
        token,
        &["apply", "-f", file.to_str().unwrap(), "-m", message],
    );
    assert_eq!(code, 0, "ctl apply failed:\n{out}\n{err}");
}

/// A gateway following a control plane.
pub struct Node {
    /// Its process.
    pub proc: Option<Proc>,
    /// Its name.
    pub name: String,
    /// Its client listener.
    pub addr: SocketAddr,
    state: tempfile::TempDir,
    control: String,
    token: String,
}

impl Node {
    /// Start `tollgate run --control URL` with a fresh state directory.
    pub fn start(cp: &ControlPlane, token: &str, name: &str) -> Self {
        let mut node = Self {
            proc: None,
            name: name.to_owned(),
            addr: ([127, 0, 0, 1], 0).into(),
            state: tempfile::tempdir().unwrap(),
            control: cp.url(),
            token: token.to_owned(),
        };
        node.restart();
        node
    }

    /// Start (again) with the same state directory.
    pub fn restart(&mut self) {
        self.kill();
        let state = self.state.path().display().to_string();
        let args = [
            "run",
            "--control",
            &self.control,
            "--state-dir",
            &state,
            "--node-name",
            &self.name,
        ];
        let proc = Proc::spawn(&self.name, &args, &[("TOLLGATE_NODE_TOKEN", &self.token)]);
        self.addr = proc.wait_for(Duration::from_secs(60), listening_addr);
        self.proc = Some(proc);
    }

    /// Stop it hard.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// A URL on its client listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// p50 and max of durations, in milliseconds.
pub fn p50_max(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
    )
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}
