//! Shared harness for the proxy scenarios: a mock upstream that echoes what it received as JSON,
//! config builders, a gateway on 127.0.0.1:0, a client, and a recording test chain.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tollgate::chain::{
    Chain, Flow, LogEntry, PluginFailure, Reply, RequestOutcome, RequestState, ResponseState,
};
use tollgate::config::{Config, GatewaySettings, Limits, PathMatch, Route, Upstream};
use tollgate::proxy::{Proxy, RoutingTable, ServeOptions, serve_with};

/// Start a mock upstream named `name`. It echoes method, path, query, headers and body length as
/// JSON; a request header `x-delay-ms` makes it wait before answering.
pub async fn mock_upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| echo(name, req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn echo(name: &str, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let delay = req
        .headers()
        .get("x-delay-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let (parts, body) = req.into_parts();
    let body_len = match body.collect().await {
        Ok(collected) => json!(collected.to_bytes().len()),
        Err(e) => json!(format!("error: {e}")),
    };
    let echoed = json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers_json(&parts.headers),
        "body_len": body_len,
    });
    let mut response = Response::new(Full::new(Bytes::from(echoed.to_string())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
        .headers_mut()
        .insert("x-upstream", name.parse().unwrap());
    // A hop-by-hop header the gateway must not pass on.
    response
        .headers_mut()
        .insert("keep-alive", "timeout=5".parse().unwrap());
    Ok(response)
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<bin>"))
            .collect();
        map.insert(name.as_str().to_owned(), json!(values.join(", ")));
    }
    Value::Object(map)
}

/// An address nothing listens on.
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

pub fn upstream(name: &str, targets: &[SocketAddr]) -> Upstream {
    Upstream {
        name: name.into(),
        targets: targets.iter().map(ToString::to_string).collect(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..Upstream::default()
    }
}

pub fn prefix(name: &str, path: &str, upstream: &str) -> Route {
    Route {
        name: Arc::from(name),
        hosts: Vec::new(),
        path: PathMatch::Prefix(path.into()),
        methods: Vec::new(),
        upstream: upstream.into(),
        chain: Vec::new(),
        case_insensitive: false,
        deprecation: None,
    }
}

pub fn config(upstreams: Vec<Upstream>, routes: Vec<Route>) -> Config {
    Config {
        source: PathBuf::from("test.toml"),
        gateway: GatewaySettings {
            plugin_dir: PathBuf::new(),
            cache_dir: PathBuf::new(),
            watch: false,
            ..GatewaySettings::default()
        },
        listeners: Vec::new(),
        admin: None,
        limits: Limits::default(),
        server: Default::default(),
        state: Default::default(),
        upstreams: upstreams
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect::<BTreeMap<_, _>>(),
        plugins: BTreeMap::new(),
        routes,
        access_log: Default::default(),
        telemetry: None,
    }
}

pub fn table(config: &Config, chains: HashMap<String, Arc<dyn Chain>>) -> RoutingTable {
    RoutingTable::new(config, chains).unwrap()
}

/// A gateway serving on 127.0.0.1:0; shuts down when dropped.
pub struct Gateway {
    pub addr: SocketAddr,
    pub proxy: Arc<Proxy>,
    shutdown: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    pub async fn start(table: RoutingTable) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Arc::new(Proxy::new(table));
        let (tx, rx) = oneshot::channel::<()>();
        let mut options = ServeOptions::default();
        options.server.drain_timeout = Duration::from_secs(5);
        let done = tokio::spawn(serve_with(
            listener,
            proxy.clone(),
            async {
                let _ = rx.await;
            },
            options,
        ));
        Gateway {
            addr,
            proxy,
            shutdown: Some(tx),
            done: Some(done),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signal shutdown and wait for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

pub async fn send(client: &TestClient, req: Request<Full<Bytes>>) -> Answer {
    let response = client.request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> Answer {
    send(&client(), request(Method::GET, url, &[])).await
}

pub fn request(method: Method, url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::new())).unwrap()
}

/// Write raw bytes to `addr` and read the answer until the server closes or goes quiet.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a [`TestChain`] plugin does in the request phase.
#[derive(Clone)]
pub enum Step {
    /// Add a request header `x-plugin-<name>: <name>` and continue.
    Tag(&'static str),
    /// Answer with this status and body.
    Respond(&'static str, StatusCode),
    /// Fail with this failure.
    Fail(&'static str, tollgate::chain::FailureKind),
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Tag(n) | Step::Respond(n, _) | Step::Fail(n, _) => n,
        }
    }
}

/// A plain-Rust chain that records every phase call in `events`.
pub struct TestChain {
    pub steps: Vec<Step>,
    pub events: Arc<Mutex<Vec<String>>>,
    pub needs_request_body: bool,
    pub needs_response_body: bool,
    pub logs: Arc<Mutex<Vec<LogEntry>>>,
}

impl TestChain {
    pub fn new(steps: Vec<Step>) -> TestChain {
        TestChain {
            steps,
            events: Arc::default(),
            needs_request_body: false,
            needs_response_body: false,
            logs: Arc::default(),
        }
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

impl Chain for TestChain {
    fn needs_request_body(&self) -> bool {
        self.needs_request_body
    }

    fn needs_response_body(&self) -> bool {
        self.needs_response_body
    }

    fn wants_log(&self) -> bool {
        true
    }

    fn on_request<'a>(
        &'a self,
        req: &'a mut RequestState,
    ) -> BoxFuture<'a, Result<RequestOutcome, PluginFailure>> {
        Box::pin(async move {
            for (i, step) in self.steps.iter().enumerate() {
                self.events
                    .lock()
                    .unwrap()
                    .push(format!("request:{}", step.name()));
                match step {
                    Step::Tag(name) => {
                        req.headers.insert(
                            http::HeaderName::from_bytes(format!("x-plugin-{name}").as_bytes())
                                .unwrap(),
                            name.parse().unwrap(),
                        );
                    }
                    Step::Respond(_, status) => {
                        let reply = Reply {
                            status: *status,
                            headers: HeaderMap::new(),
                            body: Bytes::from_static(b"{\"from\":\"plugin\"}"),
                        };
                        return Ok(RequestOutcome {
                            ran: i + 1,
                            flow: Flow::Respond(reply),
                        });
                    }
                    Step::Fail(name, kind) => {
                        return Err(PluginFailure {
                            plugin: Arc::from(*name),
                            kind: *kind,
                            message: "test failure".into(),
                        });
                    }
                }
            }
            Ok(RequestOutcome {
                ran: self.steps.len(),
                flow: Flow::Continue,
            })
        })
    }

    fn on_response<'a>(
        &'a self,
        _req: &'a mut RequestState,
        resp: &'a mut ResponseState,
        ran: usize,
    ) -> BoxFuture<'a, Result<Flow, PluginFailure>> {
        Box::pin(async move {
            for step in self.steps[..ran].iter().rev() {
                self.events
                    .lock()
                    .unwrap()
                    .push(format!("response:{}", step.name()));
                let order = resp
                    .headers
                    .get("x-response-order")
                    .map(|v| format!("{},{}", v.to_str().unwrap(), step.name()))
                    .unwrap_or_else(|| step.name().to_owned());
                resp.headers
                    .insert("x-response-order", order.parse().unwrap());
            }
            if let Some(body) = &resp.body {
                resp.headers.insert("x-seen-body-len", body.len().into());
            }
            Ok(Flow::Continue)
        })
    }

    fn on_log(&self, req: RequestState, entry: LogEntry) -> BoxFuture<'static, ()> {
        let logs = self.logs.clone();
        let events = self.events.clone();
        Box::pin(async move {
            events.lock().unwrap().push(format!("log:{}", req.route));
            logs.lock().unwrap().push(entry);
        })
    }
}
