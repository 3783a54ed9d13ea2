//! Request bodies buffered for plugins are capped across all requests (`[limits]
//! max_buffered_bytes`): past the budget a request gets a fast 503 `buffer_budget_exhausted`,
//! counted in `tollgate_buffer_budget_refusals_total`, and its bytes are given back when a
//! request ends. 200 concurrent unauthenticated 10 MB POSTs over one h2c connection leave the
//! gateway's memory bounded by the budget, not by 200 × 10 MB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream, get};

use crate::edge_support::{config, raw};

/// A route whose chain buffers the request body (`redact` with `request = true`), behind a
/// key check (`auth`) the flood never passes. `limits` is the `[limits]` table's body.
fn gateway_config(upstream: &Upstream, chain: &str, limits: &str) -> String {
    config(
        &upstream.target(),
        &format!(
            r#"
[admin]
addr = "127.0.0.1:0"

[limits]
{limits}

[plugins.auth]
module = "{{plugins}}/auth.wasm"
[plugins.auth.config.api_key]
header = "x-api-key"
[[plugins.auth.config.api_key.keys]]
hash = "bd0edab034bd69aab2e87b0abd396c2612156d394a958310d04348b35f6c224a"
consumer = "ops"

[plugins.redact]
module = "{{plugins}}/redact.wasm"
config = {{ request = true, response = false, detectors = ["email"] }}

[[routes]]
name = "upload"
path_prefix = "/"
upstream = "echo"
chain = [{chain}]
"#
        ),
    )
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_budget_a_request_gets_a_fast_503_and_the_bytes_come_back() {
    tollgate::admin::install_metrics_recorder();
    let upstream = Upstream::echo("echo").await;
    let limits = "max_body_bytes = 1048576\nmax_buffered_bytes = 1048576";
    let gateway = Gateway::start(&gateway_config(&upstream, r#""redact""#, limits)).await;
    let admin = gateway.admin.unwrap();

    // A holds 900 KB of the 1 MiB budget: it declares 1,000,000 bytes and stalls.
    let mut holder = TcpStream::connect(gateway.addr).await.unwrap();
    let head = "POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n";
    holder.write_all(head.as_bytes()).await.unwrap();
    holder.write_all(&vec![b'a'; 900_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // B needs 200 KB more: refused at once, with a JSON body naming the cap.
    let body = "b".repeat(200_000);
    let request = format!(
        "POST /b HTTP/1.1\r\nHost: gw.test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    let reply = raw(gateway.addr, request.as_bytes()).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.json()["error"], "buffer_budget_exhausted");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let text = get(&format!("http://{admin}/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&text.body).into_owned();
    assert!(
        metric(&text, "tollgate_buffer_budget_refusals_total") >= 1.0,
        "{text}"
    );

    // A goes away: its bytes are given back, and C fits again.
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = raw(gateway.addr, request.replace("/b", "/c").as_bytes()).await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(Instant::now() < deadline, "the budget was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gateway.shutdown().await;
}

/// This process's resident set size in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// The bound this scenario states: with a 32 MiB budget, the gateway (in this process) grows by
/// less than this while 200 × 10 MB arrive. Without the cap it heads for 2 GB.
const RSS_GROWTH_BOUND: u64 = 256 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_unauthenticated_10_mb_posts_over_one_h2c_connection_stay_bounded() {
    let upstream = Upstream::echo("echo").await;
    let limits = "max_body_bytes = 10485760\nmax_buffered_bytes = 33554432";
    let gateway = Gateway::start(&gateway_config(&upstream, r#""auth", "redact""#, limits)).await;
    let stream = TcpStream::connect(gateway.addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);

    let baseline = rss();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let body = Bytes::from(vec![b'x'; 10 * 1024 * 1024]);
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..200 {
        let mut sender = sender.clone();
        let body = body.clone();
        requests.spawn(async move {
            let request = Request::post(format!("http://gw.test/upload/{i}"))
                .version(Version::HTTP_2)
                .header("content-type", "text/plain")
                .body(Full::new(body))
                .unwrap();
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        });
    }
    let mut statuses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = rss();
        peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
        assert!(
            now.saturating_sub(baseline) < RSS_GROWTH_BOUND,
            "RSS grew by {} MB (bound {} MB) after {} answers",
            now.saturating_sub(baseline) / (1024 * 1024),
            RSS_GROWTH_BOUND / (1024 * 1024),
            statuses.len()
        );
        match tokio::time::timeout(Duration::from_millis(20), requests.join_next()).await {
            Ok(Some(done)) => match done.unwrap() {
                Ok((status, body)) => {
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    statuses.push((status, json["error"].as_str().map(str::to_owned)));
                }
                // A stream reset after the answer is fine; the answer is what counts.
                Err(e) => statuses.push((0, Some(e.to_string()))),
            },
            Ok(None) => break,
            Err(_) => assert!(Instant::now() < deadline, "answers: {}", statuses.len()),
        }
    }
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(baseline);
    eprintln!(
        "200 x 10 MB over h2c: peak RSS growth {} MB (bound {} MB)",
        growth / (1024 * 1024),
        RSS_GROWTH_BOUND / (1024 * 1024)
    );
    assert_eq!(statuses.len(), 200);
    for (status, error) in &statuses {
        assert!(
            (*status == 401 && error.as_deref() == Some("unauthorized"))
                || (*status == 503 && error.as_deref() == Some("buffer_budget_exhausted")),
            "{status} {error:?}"
        );
    }
    gateway.shutdown().await;
}
