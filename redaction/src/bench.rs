//! Native timing loops for the redaction of benchmark-sized bodies, in microseconds per body
//! (the fastest of short batches, see `per_body`): the `json-redact` case of `scripts/bench-vs-nginx.sh` (a 3,074-byte JSON of customers
//! with e-mails and card numbers, `$..email` hashed and cards partially masked), each detector
//! alone, each mask style, field rules alone, and a body with no personal data at all. Run with
//! `cargo test --release -p tollgate-redaction -- --ignored --nocapture`
//! (`REDACT_BENCH=<part of "label body">` for some rows only, `REDACT_BENCH_MS=<ms>` of
//! CPU per row, e.g. under `perf record`). Hashes here use the CPU's SHA instructions when it
//! has them; WebAssembly has none (its 20 HMACs cost about twice as much).

use crate::body::{Notes, Outcome, redact};
use crate::config::{RawConfig, Settings, validate};

/// CPU time of this thread in nanoseconds (`/proc/thread-self/schedstat`, updated at scheduler
/// ticks): the budget of a timing loop, which on a busy machine wall time would overstate.
fn cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The mock upstream's echo of `scripts/bench.sh`'s request: sixteen headers, each with an
/// e-mail address, a card number, an IPv4 address and a phone number.
pub fn echo_json() -> String {
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

/// `scripts/bench-vs-nginx.sh`'s `redact.json`, byte for byte (3,074 bytes).
pub fn customers_json() -> String {
    let rows: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"Customer {i}","email":"customer.{i}@example.com","card":"4111 1111 1111 1111","city":"Lisbon","note":"regular order, deliver before noon"}}"#
            )
        })
        .collect();
    format!(r#"{{"customers":[{}],"page":1}}"#, rows.join(","))
}

/// About 3.2 KB of JSON with nothing personal in it, but with what detectors look at twice:
/// digits, dates, times, versions, prices, dots, dashes, a `+` and URLs.
pub fn clean_json() -> String {
    let rows: Vec<String> = (0..16)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:05}","title":"Garden chair model {i}","price":{}.99,"stock":{},"updated":"2026-11-{:02}T10:30:00Z","version":"v1.{i}.3","tags":["outdoor","wood"],"url":"https://shop.example/items/{i}?ref=home"}}"#,
                10 + i,
                i * 7,
                1 + i
            )
        })
        .collect();
    format!(
        r#"{{"items":[{}],"page":1,"total":16,"note":"prices in EUR, +VAT"}}"#,
        rows.join(",")
    )
}

const KEY: &str = r#""hash_key": "bench-only-hmac-key-0123456789abcdef""#;

fn settings(config: &str) -> Settings {
    let raw: RawConfig = tollgate_sdk::parse_config(config).expect("parses");
    validate(raw).expect("valid")
}

fn once(settings: &Settings, body: &str, counts: &mut [u64]) -> Outcome {
    redact(
        settings,
        Some("application/json"),
        &[],
        body.as_bytes(),
        counts,
        &mut Notes::default(),
    )
}

/// Microseconds per call of `f`: the fastest of batches of about 2 ms each, over at least
/// `REDACT_BENCH_MS` (default 300) ms of CPU. On a busy machine other processes slow some
/// batches down (preemption, cold caches) and never speed one up, so the minimum is the stable
/// figure. Batches are timed by the wall clock (the thread's CPU time in `/proc` only moves at
/// scheduler ticks), which preemption can only lengthen.
fn per_body<T>(mut f: impl FnMut() -> T) -> f64 {
    let budget: u64 = std::env::var("REDACT_BENCH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let started = std::time::Instant::now();
    let mut batch = 0u32;
    while started.elapsed().as_micros() < 2000 {
        std::hint::black_box(f());
        batch += 1;
    }
    let mut best = f64::MAX;
    let begun = cpu_nanos();
    while cpu_nanos() - begun < budget * 1_000_000 {
        let t = std::time::Instant::now();
        for _ in 0..batch {
            std::hint::black_box(f());
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / f64::from(batch));
    }
    best
}

/// CPU microseconds per redaction of `body`.
fn micros(settings: &Settings, body: &str) -> f64 {
    let mut counts = vec![0; settings.rule_names.len()];
    per_body(|| once(settings, std::hint::black_box(body), &mut counts))
}

#[test]
#[ignore = "timing loop; run with --release --ignored"]
fn redact_the_benchmark_bodies() {
    let echo = echo_json();
    let customers = customers_json();
    let clean = clean_json();
    assert_eq!(customers.len(), 3074);

    // The echo body: each kind of personal data found where it is.
    let all4 =
        settings(r#"{"fields": ["x-pii-1"], "detectors": ["email", "card", "ipv4", "phone"]}"#);
    let mut counts = vec![0; all4.rule_names.len()];
    let Outcome::Replaced(out) = once(&all4, &echo, &mut counts) else {
        panic!("the body has personal data");
    };
    assert_eq!(
        counts,
        vec![1, 15, 15, 17, 15],
        "{}",
        String::from_utf8_lossy(&out)
    );
    // The json-redact body: twenty e-mails hashed, twenty cards partially masked.
    let bench = settings(&format!(
        r#"{{"fields": [{{"match": "$..email", "style": "hash"}}], "detectors": {{"card": "partial"}}, {KEY}}}"#
    ));
    let mut counts = vec![0; bench.rule_names.len()];
    assert!(matches!(
        once(&bench, &customers, &mut counts),
        Outcome::Replaced(_)
    ));
    assert_eq!(counts, vec![20, 20]);
    let all = r#"["email", "card", "iban", "ssn", "phone", "ipv4", "ipv6"]"#;
    let mut counts = vec![0; 7];
    let every = settings(&format!(r#"{{"detectors": {all}}}"#));
    assert_eq!(once(&every, &clean, &mut counts), Outcome::Unchanged);

    let mut rows: Vec<(String, &str, &str)> = vec![(
        format!(
            r#"{{"fields": [{{"match": "$..email", "style": "hash"}}], "detectors": {{"card": "partial"}}, {KEY}}}"#
        ),
        "customers",
        "json-redact (bench-vs-nginx)",
    )];
    for d in ["email", "card", "iban", "ssn", "phone", "ipv4", "ipv6"] {
        rows.push((format!(r#"{{"detectors": ["{d}"]}}"#), "customers", d));
        rows.push((format!(r#"{{"detectors": ["{d}"]}}"#), "echo", d));
    }
    for (config, label) in [
        (
            r#"{"fields": ["x-pii-1"], "detectors": ["email", "card", "ipv4", "phone"]}"#
                .to_owned(),
            "x-pii-1 + 4 detectors (bench.sh)",
        ),
        (format!(r#"{{"detectors": {all}}}"#), "all 7 detectors"),
        (
            format!(r#"{{"style": "hash", "detectors": {all}, {KEY}}}"#),
            "all 7 detectors, hash",
        ),
        (
            r#"{"style": "partial", "detectors": ["email", "card"]}"#.to_owned(),
            "email + card, partial",
        ),
    ] {
        rows.push((config.clone(), "echo", label));
        rows.push((config.clone(), "customers", label));
        rows.push((config, "clean", label));
    }
    for (config, label) in [
        (r#"{"fields": ["email"]}"#.to_owned(), "field name email"),
        (
            format!(r#"{{"fields": [{{"match": "$..email", "style": "hash"}}], {KEY}}}"#),
            "$..email hash",
        ),
        (
            r#"{"fields": ["$.customers[*].card", "$..name", "ssn"]}"#.to_owned(),
            "3 field rules",
        ),
    ] {
        rows.push((config.clone(), "customers", label));
        rows.push((config, "clean", label));
    }

    // `REDACT_BENCH=card` times only the rows whose "label body" contains `card`
    // (`REDACT_BENCH="all 7 detectors clean"` for one row).
    let only = std::env::var("REDACT_BENCH").unwrap_or_default();
    println!("{:<36} {:<15} {:>8}", "config", "body:bytes", "µs/body");
    // Yardsticks for a busy machine: what a JSON validation alone and the twenty HMACs of the
    // json-redact body cost in the same run.
    if only.is_empty() || "calibration".contains(&only) {
        let validate = per_body(|| {
            serde_json::from_str::<serde::de::IgnoredAny>(std::hint::black_box(&customers)).is_ok()
        });
        println!(
            "{:<36} {:<15} {validate:>8.1}",
            "calibration: serde_json validation", "customers:3074"
        );
        let m = crate::mask::Masker::new(
            String::new(),
            4,
            Some(b"bench-only-hmac-key-0123456789abcdef"),
        );
        let hmacs = per_body(|| {
            (0..20)
                .map(|i| {
                    m.mask(
                        crate::mask::Style::Hash,
                        std::hint::black_box(&format!("customer.{i}@example.com")),
                    )
                    .len()
                })
                .sum::<usize>()
        });
        println!(
            "{:<36} {:<15} {hmacs:>8.1}",
            "calibration: 20 HMAC-SHA256 masks", "-"
        );
    }
    for (config, body_name, label) in rows {
        if !format!("{label} {body_name}").contains(&only) {
            continue;
        }
        let body = match body_name {
            "customers" => &customers,
            "echo" => &echo,
            _ => &clean,
        };
        let s = settings(&config);
        println!(
            "{label:<36} {:<15} {:>8.1}",
            format!("{body_name}:{}", body.len()),
            micros(&s, body)
        );
    }
}
