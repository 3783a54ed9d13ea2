//! The admin API, on its own loopback listener: health, reload, per-consumer usage (from the
//! meter plugins' counters, see [`crate::usage`]) and Prometheus metrics.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::usage::UsageQuery;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once; later calls do nothing).
pub fn install_metrics_recorder() {
    PROMETHEUS.get_or_init(|| match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    });
}

/// Serve the admin API until `shutdown` completes, then let requests in flight (a reload, say)
/// finish; the caller bounds that wait with the drain deadline.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let gateway = gateway.clone();
        let service = service_fn(move |req| handle(gateway.clone(), req));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn handle(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/admin/health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::POST, "/admin/reload") => match gateway.reload().await {
            Ok(report) => json_response(
                StatusCode::OK,
                &json!({"status": "reloaded", "report": report}),
            ),
            Err(e) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({
                    "error": "reload_failed",
                    "message": e.to_string(),
                    "issues": e.issues().iter().map(|i| json!({"path": i.path, "message": i.message})).collect::<Vec<_>>(),
                }),
            ),
        },
        (&Method::GET, "/admin/usage") => usage(&gateway, req.uri().query()).await,
        (&Method::GET, "/metrics") => match PROMETHEUS.get().and_then(Option::as_ref) {
            Some(handle) => Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(handle.render())))
                .unwrap_or_default(),
            None => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "metrics_disabled", "message": "no metrics recorder in this process"}),
            ),
        },
        (_, "/admin/health" | "/admin/reload" | "/admin/usage" | "/metrics") => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method_not_allowed", "message": format!("{} is not allowed here", req.method())}),
        ),
        (_, path) => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "message": format!("no admin endpoint at {path}")}),
        ),
    };
    Ok(response)
}

/// `GET /admin/usage?consumer=C[&route=R][&from=T][&to=T]`: 200 with the usage, 400 naming the
/// bad parameter, 503 when the state backend fails.
async fn usage(gateway: &Gateway, query: Option<&str>) -> Response<Full<Bytes>> {
    let query = match UsageQuery::parse(query, time::OffsetDateTime::now_utc()) {
        Ok(q) => q,
        Err(e) => return json_response(StatusCode::BAD_REQUEST, &e.to_json()),
    };
    let meters = crate::usage::meter_instances(&*gateway.config().await);
    match crate::usage::usage(&*gateway.state(), &meters, &query).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "state_unavailable", "message": e.to_string()}),
        ),
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
