//! A native timing loop for the redaction of the benchmark's body (`scripts/bench.sh`: a
//! 3.2 KB JSON echo of sixteen headers, each with an e-mail address, a card number, an IPv4
//! address and a phone number). Run it with
//! `cargo test --release --target "$(rustc -vV | sed -n 's/^host: //p')" -p redact -- --ignored --nocapture`.

/// CPU time of this thread in nanoseconds (`/proc/thread-self/schedstat`): the machine may be
/// busy, and wall time would count other processes' turns.
fn cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

use crate::body::{Notes, Outcome, redact};
use crate::config::{RawConfig, validate};

/// The mock upstream's echo of the benchmark's request, as the redact route receives it.
pub fn customer_json() -> String {
    let mut headers = serde_json::Map::new();
    for i in 1..=16 {
        headers.insert(
            format!("x-pii-{i}"),
            format!(
                "user {i} alice.{i}@example.com card 4111 1111 1111 1111 from 203.0.113.{i} tel \
                 +44 20 7946 0958 note lorem ipsum dolor sit amet consectetur adipiscing elit sed \
                 do eiusmod tempor"
            )
            .into(),
        );
    }
    headers.insert("x-forwarded-for".into(), "127.0.0.1".into());
    headers.insert("x-forwarded-host".into(), "127.0.0.1:8080".into());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert(
        "x-request-id".into(),
        "0d5e1f0c-7f43-4c1e-9a43-5f6b8e1d2c3a".into(),
    );
    serde_json::json!({
        "method": "GET",
        "path": "/redact/json",
        "query": null,
        "headers": headers,
        "body_bytes": 0,
    })
    .to_string()
}

#[test]
#[ignore = "timing loop; run with --release --ignored"]
fn redact_the_benchmark_body() {
    let raw: RawConfig = tollgate_sdk::parse_config(
        r#"{"fields": ["x-pii-1"], "detectors": ["email", "card", "ipv4", "phone"]}"#,
    )
    .expect("parses");
    let settings = validate(raw).expect("valid");
    let body = customer_json();
    let mut counts = vec![0; settings.rule_names.len()];
    let run = |counts: &mut [u64]| {
        let ct = Some("application/json");
        redact(
            &settings,
            ct,
            &[],
            body.as_bytes(),
            counts,
            &mut Notes::default(),
        )
    };
    let Outcome::Replaced(out) = run(&mut counts) else {
        panic!("the body has personal data");
    };
    assert_eq!(
        counts,
        vec![1, 15, 15, 17, 15],
        "{}",
        String::from_utf8_lossy(&out)
    );
    let rounds = 2_000;
    let started = cpu_nanos();
    for _ in 0..rounds {
        std::hint::black_box(run(&mut counts));
    }
    let micros = (cpu_nanos() - started) as f64 / 1e3 / f64::from(rounds);
    println!(
        "redact: {micros:.1} µs per {}-byte body ({} bytes after)",
        body.len(),
        out.len()
    );
}

#[test]
#[ignore = "timing loop; run with --release --ignored"]
fn redact_per_detector() {
    let body = customer_json();
    for detectors in [
        "[]",
        r#"["email"]"#,
        r#"["card"]"#,
        r#"["ipv4"]"#,
        r#"["phone"]"#,
    ] {
        let raw: RawConfig = tollgate_sdk::parse_config(&format!(
            r#"{{"fields": ["x-pii-1"], "detectors": {detectors}}}"#
        ))
        .expect("parses");
        let settings = validate(raw).expect("valid");
        let mut counts = vec![0; settings.rule_names.len()];
        let rounds = 1_000;
        let started = cpu_nanos();
        for _ in 0..rounds {
            std::hint::black_box(redact(
                &settings,
                Some("application/json"),
                &[],
                body.as_bytes(),
                &mut counts,
                &mut Notes::default(),
            ));
        }
        let micros = (cpu_nanos() - started) as f64 / 1e3 / f64::from(rounds);
        println!("detectors {detectors}: {micros:.1} µs");
    }
}
