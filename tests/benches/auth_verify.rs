//! Benchmark: what a signature check costs inside the `auth` plugin.
//!
//! ```sh
//! cargo bench -p tollgate-tests --bench auth_verify        # AUTH_BENCH_N=2000 requests per case
//! ```
//!
//! One gateway, one route with `auth`; N sequential keep-alive requests per credential kind. The
//! API-key request (one SHA-256 and a constant-time compare) is the baseline: the difference per
//! request is the cost of the verification: since contract 0.2.0 the plugin hands the signature
//! check to the host (`crypto` import, ring); `AUTH_WASM=path/to/auth.wasm` measures another build
//! of the plugin, e.g. one on contract 0.1.0 that verified in Wasm (RustCrypto).

#![allow(clippy::unwrap_used)]

#[path = "../tests/e2e/auth_support/mod.rs"]
mod auth_support;

use std::time::{Duration, Instant};

use auth_support::*;
use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use jsonwebtoken::Algorithm;
use tollgate_tests::{Gateway, Upstream, client, send};

const API_KEY: &str = "tg_bench_5f4e3d2c1b0a99887766554433221100";
/// `correct horse`, bcrypt cost 10 (libxcrypt).
const BCRYPT_10: &str = "$2b$10$4dll2hojYB1L/UW858E3JOe7ieCRSbuqzEMB.71Es3UgNbbqRpJDq";

fn plugin() -> String {
    format!(
        r#"timeout_ms = 1000
pool_size = 1

[plugins.auth.config]
methods = ["api_key", "jwt", "basic"]

[plugins.auth.config.api_key]
keys = [{{ hash = "{key}", consumer = "bench" }}]

[plugins.auth.config.basic]
cache_ttl_s = 0
users = [{{ username = "carol", password_hash = "{BCRYPT_10}" }}]

[[plugins.auth.config.jwt.issuers]]
issuer = "{ISSUER}"
algorithms = ["HS256", "RS256", "PS256", "ES256", "ES384", "EdDSA"]
keys = [{{ secret = "{SECRET}" }}, {{ pem = {rsa} }}, {{ pem = {p256} }}, {{ pem = {p384} }}, {{ pem = {ed} }}]
"#,
        key = key_hash(API_KEY),
        rsa = one_line(&key_file("rsa.pub")),
        p256 = one_line(&key_file("p256.pub")),
        p384 = one_line(&key_file("p384.pub")),
        ed = one_line(&key_file("ed25519.pub")),
    )
}

/// Mean and median per request over `n` requests (after a warm-up).
async fn measure(gateway: &Gateway, headers: &[(&str, &str)], n: usize) -> (Duration, Duration) {
    let client = client();
    let url = gateway.url("/api/bench");
    for _ in 0..20 {
        let reply = send(&client, Method::GET, &url, headers, Bytes::new()).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let reply = send(&client, Method::GET, &url, headers, Bytes::new()).await;
        times.push(start.elapsed());
        assert_eq!(reply.status, 200);
    }
    let mean = times.iter().sum::<Duration>() / n as u32;
    times.sort();
    (mean, times[n / 2])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(verify_cost_per_algorithm());
}

async fn verify_cost_per_algorithm() {
    let n: usize = std::env::var("AUTH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let upstream = Upstream::echo("echo").await;
    let mut config = gateway_config(&upstream.target(), &plugin(), "", &[]);
    // AUTH_WASM=path: measure another build of the plugin (e.g. one on contract 0.1.0, which
    // verified in Wasm) against the same gateway.
    if let Ok(module) = std::env::var("AUTH_WASM") {
        config = config.replace("{plugins}/auth.wasm", &module);
        println!("auth plugin: {module}");
    }
    let gateway = Gateway::start(&config).await;

    let (base_mean, base_p50) = measure(&gateway, &[("x-api-key", API_KEY)], n).await;
    println!(
        "{:<22} {:>10} {:>10} {:>14}",
        "credential", "mean µs", "p50 µs", "p50 - apikey"
    );
    println!(
        "{:<22} {:>10.1} {:>10.1} {:>14}",
        "api key (baseline)",
        us(base_mean),
        us(base_p50),
        "-"
    );
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("aud");
    for alg in [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let bearer = format!("Bearer {}", token(alg, &claims, None));
        let (mean, p50) = measure(&gateway, &[("authorization", &bearer)], n).await;
        println!(
            "{:<22} {:>10.1} {:>10.1} {:>14.1}",
            format!("JWT {alg:?}"),
            us(mean),
            us(p50),
            us(p50) - us(base_p50)
        );
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("carol:correct horse")
    );
    let (mean, p50) = measure(&gateway, &[("authorization", &basic)], (n / 50).max(20)).await;
    println!(
        "{:<22} {:>10.1} {:>10.1} {:>14.1}",
        "basic bcrypt-10 (no cache)",
        us(mean),
        us(p50),
        us(p50) - us(base_p50)
    );
    gateway.shutdown().await;
}

/// A PEM as a one-line TOML basic string (a JSON string literal is one).
fn one_line(pem: &str) -> String {
    serde_json::to_string(pem).unwrap()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
