//! Shared helpers for the `redact_*` scenarios: a gateway with one `redact` route in front of an
//! upstream that answers a fixed body, and a scrape of the admin `/metrics`.

#![allow(dead_code, clippy::unwrap_used)] // each scenario uses a part; a failed unwrap fails the test

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use tollgate_tests::{Gateway, Upstream, get};

/// The HMAC key the scenarios configure (test-only).
pub const HASH_KEY: &str = "test-only-redaction-key-0123456789";

/// A gateway config: route `/api` → `redact` → the upstream, with the plugin config `plugin`
/// (TOML lines of its `config` table) and extra top-level TOML (e.g. a `[limits]` table).
pub fn config(upstream: &str, plugin: &str, extra: &str) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

{extra}

[upstreams.up]
targets = ["{upstream}"]

[plugins.redact]
module = "redact"
[plugins.redact.config]
{plugin}

[[routes]]
name = "api"
path_prefix = "/api"
upstream = "up"
chain = ["redact"]
"#
    )
}

/// Start a gateway and the process-wide metrics recorder (so `/metrics` answers).
pub async fn gateway(config: &str) -> Gateway {
    tollgate::admin::install_metrics_recorder();
    Gateway::start(config).await
}

/// An upstream that answers every request with `status`, these headers and this body.
pub async fn fixed(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Upstream {
    let body: Bytes = body.into();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Upstream::start(Arc::new(move |_req: Request<Bytes>| {
        let body = body.clone();
        let headers = headers.clone();
        Box::pin(async move {
            let mut builder = Response::builder().status(status);
            for (k, v) in &headers {
                builder = builder.header(k, v);
            }
            builder.body(Full::new(body)).unwrap()
        })
    }))
    .await
}

/// An upstream that records the bodies it receives and answers `{"ok":true}`.
pub async fn recording() -> (Upstream, Arc<Mutex<Vec<(http::HeaderMap, Bytes)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let upstream = Upstream::start(Arc::new(move |req: Request<Bytes>| {
        let log = log.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            log.lock().unwrap().push((parts.headers, body));
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(b"{\"ok\":true}")))
                .unwrap()
        })
    }))
    .await;
    (upstream, seen)
}

/// The admin `/metrics` text.
pub async fn metrics(gateway: &Gateway) -> String {
    let admin = gateway.admin.expect("config has [admin]");
    let reply = get(&format!("http://{admin}/metrics"), &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// The value of the `tollgate_custom_redact_redactions` counter for a rule and phase (0 when
/// absent).
pub fn redactions(metrics: &str, rule: &str, phase: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("tollgate_custom_redact_redactions{"))
        .filter(|l| {
            l.contains(&format!("rule=\"{rule}\"")) && l.contains(&format!("phase=\"{phase}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// gzip-compress.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// gzip-decompress.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// HMAC-SHA256 written out from its definition (RFC 2104), independent of the plugin's crate.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// The mask `hash` writes for `value` with [`HASH_KEY`].
pub fn expected_hash(value: &str) -> String {
    let mac = hmac_sha256(HASH_KEY.as_bytes(), value.as_bytes());
    let hex: String = mac[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("hmac:{hex}")
}
