//! Test harness for end-to-end tests: builds the Wasm plugins once, runs mock upstreams and the
//! gateway on `127.0.0.1:0`, and speaks real HTTP to them.
//!
//! Configs are written as TOML text with placeholders: `{plugins}` (built-in plugin directory),
//! `{fixtures}` (fixture plugin directory) and `{cache}` (a compile cache shared by all tests).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

pub mod process;
pub mod redis_cluster;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Directory of the built-in plugins' `.wasm` files.
pub fn plugin_dir() -> PathBuf {
    build_wasm().0.clone()
}

/// Directory of the fixture plugins' `.wasm` files.
pub fn fixture_dir() -> PathBuf {
    build_wasm().1.clone()
}

/// True when `scripts/test.sh` built the plugins and fixtures just before the tests
/// (`TOLLGATE_WASM_PREBUILT=1`): every test runs in its own process under cargo-nextest, and a
/// no-op cargo build per process would add minutes.
pub fn prebuilt() -> bool {
    std::env::var_os("TOLLGATE_WASM_PREBUILT").is_some_and(|v| v == "1")
}

/// Build `plugins/` and `tests/fixtures/` for wasm32-wasip2 once per test process. Cargo's own
/// lock makes concurrent test processes wait for each other; a no-op build takes well under a
/// second, so tests never run against stale plugins.
fn build_wasm() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let root = repo_root();
        let mut dirs = Vec::new();
        for workspace in ["plugins", "tests/fixtures"] {
            let dir = root.join(workspace);
            if prebuilt() {
                dirs.push(dir.join("target/wasm32-wasip2/release"));
                continue;
            }
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
                .current_dir(&dir)
                // Do not leak the outer build's flags or target dir into the guest build.
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET")
                .status()
                .expect("run cargo to build the wasm plugins");
            assert!(
                status.success(),
                "building {workspace} for wasm32-wasip2 failed"
            );
            dirs.push(
                dir.join("target/wasm32-wasip2/release")
                    .canonicalize()
                    .unwrap(),
            );
        }
        (dirs[0].clone(), dirs[1].clone())
    })
}

/// Directory of the example plugins in other languages (`examples/target/`): runs
/// `scripts/build-examples.sh` once per test process (a second run takes about a second; the
/// first installs componentize-py and componentize-js from PyPI and npm) and fails clearly when
/// a component is still missing.
pub fn example_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        let status = Command::new("bash")
            .arg(root.join("scripts/build-examples.sh"))
            .current_dir(&root)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("run scripts/build-examples.sh");
        assert!(
            status.success(),
            "scripts/build-examples.sh failed: the Python and JavaScript example plugins could not be built (needs python3 with venv, node and npm, and PyPI/npm reachable on the first run)"
        );
        let dir = root.join("examples/target").canonicalize().unwrap();
        for file in [
            "python_signature.wasm",
            "js_ab_router.wasm",
            "wasm32-wasip2/release/rust_ab_router.wasm",
            "wasm32-wasip2/release/rust_signature.wasm",
        ] {
            assert!(
                dir.join(file).is_file(),
                "example component {} is missing after scripts/build-examples.sh",
                dir.join(file).display()
            );
        }
        dir
    })
    .clone()
}

/// What a mock upstream saw, echoed back as JSON by [`Upstream::echo`].
pub type Handler =
    Arc<dyn Fn(Request<Bytes>) -> futures::BoxFuture<'static, Response<Full<Bytes>>> + Send + Sync>;

/// Re-export for handlers.
pub mod futures {
    /// A boxed future.
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// A mock upstream HTTP server on `127.0.0.1:0`.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// An upstream that answers every request with the given handler.
    pub async fn start(handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            Ok::<_, Infallible>(handler(Request::from_parts(parts, body)).await)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, task }
    }

    /// An upstream that echoes what it received as JSON:
    /// `{"upstream", "method", "path", "query", "headers": {name: [values]}, "body"}`.
    pub async fn echo(name: &str) -> Self {
        let name = name.to_owned();
        Self::start(Arc::new(move |req| {
            let name = name.clone();
            Box::pin(async move { echo_response(&name, &req) })
        }))
        .await
    }

    /// An upstream that waits `delay` before echoing.
    pub async fn slow(name: &str, delay: Duration) -> Self {
        let name = name.to_owned();
        Self::start(Arc::new(move |req| {
            let name = name.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                echo_response(&name, &req)
            })
        }))
        .await
    }

    /// `host:port` of this upstream, for configs.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

/// The JSON echo of a request.
pub fn echo_response(name: &str, req: &Request<Bytes>) -> Response<Full<Bytes>> {
    let mut headers = serde_json::Map::new();
    for (k, v) in req.headers() {
        let entry = headers
            .entry(k.as_str().to_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(values) = entry {
            values.push(String::from_utf8_lossy(v.as_bytes()).into_owned().into());
        }
    }
    let body = serde_json::json!({
        "upstream": name,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "headers": headers,
        "body": String::from_utf8_lossy(req.body()),
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A port on which nothing listens (bound, then released).
pub async fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A gateway running in this process on a config written to a temporary directory.
pub struct Gateway {
    /// The running gateway.
    pub running: Option<tollgate::gateway::Running>,
    /// Client-facing address.
    pub addr: SocketAddr,
    /// Admin address, when the config enables it.
    pub admin: Option<SocketAddr>,
    /// The config file (rewrite it and reload to hot-swap).
    pub config_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Start a gateway on this config text. `{plugins}` and `{fixtures}` are replaced by the
    /// plugin directories; listeners should use `127.0.0.1:0`.
    pub async fn start(config: &str) -> Self {
        Self::try_start(config)
            .await
            .unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    /// Like [`Gateway::start`], returning the error instead of panicking.
    pub async fn try_start(config: &str) -> Result<Self, tollgate::gateway::GatewayError> {
        Self::try_start_in(tempfile::tempdir().unwrap(), config).await
    }

    /// Like [`Gateway::start`], with the config written into `dir` (which may hold files the
    /// config names by relative path).
    pub async fn start_in(dir: tempfile::TempDir, config: &str) -> Self {
        Self::try_start_in(dir, config)
            .await
            .unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    async fn try_start_in(
        dir: tempfile::TempDir,
        config: &str,
    ) -> Result<Self, tollgate::gateway::GatewayError> {
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, expand(config)).unwrap();
        let running = tollgate::gateway::start(&config_path).await?;
        Ok(Self {
            addr: running.listeners[0],
            admin: running.admin,
            running: Some(running),
            config_path,
            _dir: dir,
        })
    }

    /// `http://ADDR` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Replace the config file's text (placeholders expanded).
    pub fn write_config(&self, config: &str) {
        let tmp = self.config_path.with_extension("tmp");
        std::fs::write(&tmp, expand(config)).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    /// Stop the gateway, draining in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// Replace `{plugins}`, `{fixtures}`, `{examples}` (see [`example_dir`]) and `{cache}` in a config. `{cache}` is one compile cache
/// shared by every test, so each plugin is compiled once per machine, not once per test.
pub fn expand(config: &str) -> String {
    let cache = repo_root().join("target/tollgate-test-cache");
    let config = if config.contains("{examples}") {
        config.replace("{examples}", &example_dir().display().to_string())
    } else {
        config.to_owned()
    };
    config
        .replace("{plugins}", &plugin_dir().display().to_string())
        .replace("{fixtures}", &fixture_dir().display().to_string())
        .replace("{cache}", &cache.display().to_string())
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body parsed as JSON (panics with the body text if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Send one request and read the whole response.
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = client
        .request(builder.body(Full::new(body.into())).unwrap())
        .await
        .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET url` with headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(&client(), Method::GET, url, headers, Bytes::new()).await
}

/// POST to the admin API's reload endpoint and return the reply.
pub async fn admin_reload(gateway: &Gateway) -> Reply {
    let admin = gateway.admin.expect("config has an [admin] listener");
    send(
        &client(),
        Method::POST,
        &format!("http://{admin}/admin/reload"),
        &[],
        Bytes::new(),
    )
    .await
}
