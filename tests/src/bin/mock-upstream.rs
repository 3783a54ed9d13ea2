//! A small, fast upstream for the quick start and the benchmark: answers every request with a
//! short JSON echo of the method, path and the `x-*` headers it received (what the gateway and
//! its plugins added).
//!
//! A few demo resources for the `aggregate` plugin's example route (everything else is echoed):
//!
//! - `GET /mock/users/{id}`: a user `{"id", "name", "email", "password_hash", "address"}`;
//! - `GET /mock/orders?user={id}`: that user's orders, a JSON array;
//! - `GET /mock/slow?ms=N`: waits N ms (at most 10 s), then `{"waited_ms": N}`.
//!
//! `mock-upstream [ADDR]` (default `127.0.0.1:8081`).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:8081")
        .parse()
    {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("usage: mock-upstream [IP:PORT] ({e})");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(addr).await?;
    eprintln!("mock-upstream listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(handle);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(demo) = demo(req.uri().path(), req.uri().query()).await {
        return Ok(json(demo));
    }
    let (parts, body) = req.into_parts();
    let received = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-"))
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value.into())
        })
        .collect();
    let echo = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_bytes": received,
    });
    Ok(json(echo))
}

fn json(value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The demo resources for the aggregation example, or `None` to echo.
async fn demo(path: &str, query: Option<&str>) -> Option<serde_json::Value> {
    let param = |name: &str| {
        query?
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    if let Some(id) = path.strip_prefix("/mock/users/")
        && !id.is_empty()
        && !id.contains('/')
    {
        return Some(serde_json::json!({
            "id": id,
            "name": format!("User {id}"),
            "email": format!("user{id}@example.com"),
            "password_hash": "$argon2id$v=19$not-for-clients",
            "address": { "city": "London", "street": "12 Crane Court" },
        }));
    }
    match path {
        "/mock/orders" => {
            let user = param("user").unwrap_or_default();
            Some(serde_json::json!([
                { "id": format!("{user}-1"), "user": user, "total": 30, "currency": "EUR" },
                { "id": format!("{user}-2"), "user": user, "total": 12, "currency": "EUR" },
            ]))
        }
        "/mock/slow" => {
            let ms = param("ms")
                .and_then(|ms| ms.parse::<u64>().ok())
                .unwrap_or(1000)
                .min(10_000);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Some(serde_json::json!({ "waited_ms": ms }))
        }
        _ => None,
    }
}
