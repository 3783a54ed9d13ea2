//! The rollback webhook: one JSON POST per rollback, off the request path (a spawned task),
//! bounded (at most 8 in flight; more are dropped and counted) and with a 5 s timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const MAX_IN_FLIGHT: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(5);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// POST `event` to `url` in the background (needs a tokio runtime; without one it is dropped).
pub(crate) fn post(url: http::Uri, event: serde_json::Value) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!("tollgate_canary_webhooks_total", "result" => "dropped").increment(1);
        return;
    }
    handle.spawn(async move {
        let result = tokio::time::timeout(TIMEOUT, send(&url, event)).await;
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        let outcome = match result {
            Ok(Ok(status)) if status.is_success() => "ok",
            Ok(Ok(status)) => {
                tracing::warn!(%url, %status, "canary webhook answered an error");
                "error"
            }
            Ok(Err(e)) => {
                tracing::warn!(%url, error = %e, "canary webhook failed");
                "error"
            }
            Err(_) => {
                tracing::warn!(%url, "canary webhook timed out");
                "timeout"
            }
        };
        metrics::counter!("tollgate_canary_webhooks_total", "result" => outcome).increment(1);
    });
}

async fn send(url: &http::Uri, event: serde_json::Value) -> Result<http::StatusCode, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(event.to_string())))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    Ok(response.status())
}
