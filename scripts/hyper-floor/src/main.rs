//! The floor of a hyper-based proxy: what Tollgate's empty chain would cost if the gateway did
//! nothing but move bytes with the same libraries. One current-thread runtime, hyper's HTTP/1.1
//! server, and an upstream pool of hyper's HTTP/1.1 client connections (`MODE=plain`, the
//! default), or hyper-util's pooled client (`MODE=legacy`), optionally behind hyper-util's
//! HTTP/1-or-2 server (`MODE=legacy-auto`). No routing, limits, headers, metrics or logs.
//!
//! `hyper-floor LISTEN_PORT UPSTREAM_PORT` (docs/performance.md has the command and figures).

use std::cell::RefCell;
use std::rc::Rc;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Pool = Rc<RefCell<Vec<SendRequest<Incoming>>>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Forward on a pooled connection of our own (LIFO), opening one when none is ready.
async fn forward_plain(
    pool: Pool,
    upstream: u16,
    mut req: Request<Incoming>,
) -> Result<Response<Incoming>, BoxError> {
    let mut sender = loop {
        let idle = pool.borrow_mut().pop();
        match idle {
            Some(mut sender) => {
                if sender.ready().await.is_ok() {
                    break sender;
                }
            }
            None => {
                let stream = TcpStream::connect(("127.0.0.1", upstream)).await?;
                stream.set_nodelay(true)?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::task::spawn_local(conn);
                break sender;
            }
        }
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()?;
    *req.uri_mut() = path;
    let response = sender.send_request(req).await;
    pool.borrow_mut().push(sender);
    Ok(response?)
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hyper-floor LISTEN_PORT UPSTREAM_PORT";
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let upstream: u16 = args.next().ok_or(usage)?.parse()?;
    let mode = std::env::var("MODE").unwrap_or_else(|_| "plain".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(port, upstream, mode))
}

async fn serve(port: u16, upstream: u16, mode: String) -> Result<(), BoxError> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let pool: Pool = Rc::default();
    let legacy: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let io = TokioIo::new(stream);
        let (pool, legacy, mode) = (pool.clone(), legacy.clone(), mode.clone());
        tokio::task::spawn_local(async move {
            if mode == "plain" {
                let service = hyper::service::service_fn(move |req| {
                    forward_plain(pool.clone(), upstream, req)
                });
                let server = hyper::server::conn::http1::Builder::new();
                let _ = server.serve_connection(io, service).await;
                return;
            }
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let legacy = legacy.clone();
                let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let uri = format!("http://127.0.0.1:{upstream}{path}").parse();
                async move {
                    *req.uri_mut() = uri?;
                    Ok::<_, BoxError>(legacy.request(req).await?)
                }
            });
            if mode == "legacy-auto" {
                let server = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = server.serve_connection(io, service).await;
            } else {
                let server = hyper::server::conn::http1::Builder::new();
                let _ = server.serve_connection(io, service).await;
            }
        });
    }
}
