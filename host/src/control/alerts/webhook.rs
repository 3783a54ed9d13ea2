//! Sending alerts to webhooks: a JSON POST signed with HMAC-SHA256 (`X-Tollgate-Signature:
//! sha256=<hex>` over `<timestamp>.<body>`, the timestamp in `X-Tollgate-Timestamp`), each attempt
//! bounded by a timeout, failures retried with exponential backoff up to a number of attempts.
//! The retry state lives in the store (`alert_deliveries`), so a restart resumes it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::store::{Alert, Delivery};
use crate::control::roles::hex;
use crate::control::store::{Store, StoreError, now_ms};

/// How deliveries are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Attempts before a delivery is marked failed.
    pub attempts: i64,
    /// Wait after the first failure; doubled after each next one.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Bound on one attempt (connect, send, answer).
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
        }
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An `http://` or `https://` client (public roots), HTTP/1.1.
pub fn client() -> HttpsClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// `sha256=<hex>`: HMAC-SHA256 with `secret` of `<timestamp>.<body>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex(ctx.sign().as_ref()))
}

/// The JSON body sent for an alert.
pub fn body(alert: &Alert) -> Vec<u8> {
    let event = serde_json::json!({
        "type": "tollgate.alert",
        "alert": {
            "id": alert.id,
            "route": alert.series.route,
            "consumer": alert.series.consumer,
            "metric": alert.metric,
            "value": alert.value,
            "baseline": alert.baseline,
            "z": alert.z,
            "minute_ms": alert.minute_ms,
            "detected_ms": alert.detected_ms,
        }
    });
    serde_json::to_vec(&event).unwrap_or_default()
}

/// Attempt every due delivery (concurrently) and record each outcome.
pub async fn deliver_due(
    store: &Store,
    client: &HttpsClient,
    retry: &Retry,
) -> Result<(), StoreError> {
    let due = store.due_deliveries().await?;
    let attempts = due.into_iter().map(|(mut d, alert, secret)| async move {
        let result = attempt(client, &d, &alert, &secret, retry.timeout).await;
        d.attempts += 1;
        match result {
            Ok(()) => store.delivery_outcome(&d, "delivered", "", 0).await,
            Err(e) if d.attempts >= retry.attempts => {
                tracing::warn!(alert = d.alert_id, webhook = %d.webhook_id, error = %e, "alert delivery failed for good");
                store.delivery_outcome(&d, "failed", &e, 0).await
            }
            Err(e) => {
                let wait = backoff(retry, d.attempts);
                tracing::info!(alert = d.alert_id, webhook = %d.webhook_id, error = %e, retry_in_ms = wait, "alert delivery failed; retrying");
                store
                    .delivery_outcome(&d, "pending", &e, now_ms().saturating_add(wait))
                    .await
            }
        }
    });
    for outcome in futures_util::future::join_all(attempts).await {
        outcome?;
    }
    Ok(())
}

/// The wait after `failures` failed attempts, in ms.
fn backoff(retry: &Retry, failures: i64) -> i64 {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let wait = retry
        .first_backoff
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(retry.max_backoff);
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
}

/// One POST; `Err` says why it did not get a 2xx answer.
async fn attempt(
    client: &HttpsClient,
    d: &Delivery,
    alert: &Alert,
    secret: &str,
    timeout: Duration,
) -> Result<(), String> {
    let body = body(alert);
    let timestamp = now_ms() / 1000;
    let request = http::Request::post(d.url.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "tollgate-alerts")
        .header("x-tollgate-timestamp", timestamp.to_string())
        .header("x-tollgate-signature", signature(secret, timestamp, &body))
        .header(
            "x-tollgate-delivery",
            format!("{}-{}", d.alert_id, d.webhook_id),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("bad request: {e}"))?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(e)) => Err(format!("cannot send: {e}")),
        Ok(Ok(r)) if r.status().is_success() => Ok(()),
        Ok(Ok(r)) => Err(format!("answered {}", r.status())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Python: hmac.new(b"Jefe", b"1700000000.{}", hashlib.sha256).hexdigest()
        let sig = signature("Jefe", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "sha256=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
        assert_ne!(sig, signature("Jefe", 1_700_000_001, b"{}"));
        assert_ne!(sig, signature("jefe", 1_700_000_000, b"{}"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let retry = Retry::default();
        let waits: Vec<i64> = (1..=8).map(|n| backoff(&retry, n)).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    }
}
