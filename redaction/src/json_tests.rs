//! Tests of [`crate::json`]: field rules, detectors, formatting kept, invalid documents.

use super::*;
use crate::detect::Detector;
use serde_json::{Value, json};

struct Fixture {
    fields: Vec<FieldRule>,
    detectors: Detectors,
    masker: Masker,
}

fn fixture(fields: &[(&str, Style)], detectors: &[(&str, Style)]) -> Fixture {
    let fields = fields
        .iter()
        .enumerate()
        .map(|(rule, (p, style))| FieldRule {
            pattern: Pattern::parse(p).expect("pattern"),
            style: *style,
            rule,
        })
        .collect::<Vec<_>>();
    let n = fields.len();
    let detectors = detectors
        .iter()
        .enumerate()
        .map(|(i, (name, style))| Detector::builtin(name, *style, n + i).expect("detector"))
        .collect();
    Fixture {
        fields,
        detectors: Detectors::new(detectors),
        masker: Masker::new("[REDACTED]".into(), 4, Some(b"k-k-k-k-k-k-k-k-k")),
    }
}

impl Fixture {
    fn run(&self, input: &str) -> (Option<String>, Vec<u64>) {
        let mut counts = vec![0; self.fields.len() + 8];
        let rules = Rules {
            fields: &self.fields,
            detectors: &self.detectors,
            masker: &self.masker,
        };
        let out = redact(input, rules, &mut counts).expect("valid JSON");
        (out, counts)
    }

    fn value(&self, input: Value) -> Value {
        let (out, _) = self.run(&input.to_string());
        out.map(|o| serde_json::from_str(&o).expect("output is JSON"))
            .unwrap_or(input)
    }
}

#[test]
fn field_names_and_paths_with_each_style() {
    let f = fixture(
        &[
            ("ssn", Style::Full),
            ("$.user.email", Style::Hash),
            ("$..card_number", Style::Partial),
        ],
        &[],
    );
    let out = f.value(json!({
        "user": { "email": "alice@example.com", "name": "Alice", "SSN": "123-45-6789" },
        "orders": [ { "card_number": "4111111111111111" }, { "card_number": 5500005555555559u64 } ],
        "email": "kept@example.com",
    }));
    assert_eq!(out["user"]["SSN"], "[REDACTED]");
    let hashed = out["user"]["email"].as_str().expect("string");
    assert!(
        hashed.starts_with("hmac:") && !hashed.contains("alice"),
        "{hashed}"
    );
    assert_eq!(out["user"]["name"], "Alice");
    assert_eq!(out["orders"][0]["card_number"], "****1111");
    assert_eq!(out["orders"][1]["card_number"], "****5559");
    assert_eq!(out["email"], "kept@example.com", "no detector configured");
}

#[test]
fn a_selected_object_is_masked_leaf_by_leaf() {
    let f = fixture(&[("address", Style::Full)], &[]);
    let out = f
        .value(json!({"address": {"street": "1 Main St", "zip": 12345, "geo": [1.5, null, true]}}));
    assert_eq!(
        out,
        json!({"address": {"street": "[REDACTED]", "zip": "[REDACTED]", "geo": ["[REDACTED]", null, "[REDACTED]"]}})
    );
}

#[test]
fn detectors_run_on_strings_numbers_and_keys() {
    let f = fixture(&[], &[("email", Style::Full), ("card", Style::Partial)]);
    let out = f.value(json!({
        "note": "write to bob@example.com or carol@example.org",
        "n": 4111111111111111u64,
        "not_a_card": 4111111111111112u64,
        "eve@example.com": {"x": 1},
    }));
    assert_eq!(out["note"], "write to [REDACTED] or [REDACTED]");
    assert_eq!(out["n"], "****1111");
    assert_eq!(out["not_a_card"], 4111111111111112u64);
    assert_eq!(out["[REDACTED]"]["x"], 1);
}

#[test]
fn untouched_documents_are_reported_unchanged_and_text_is_kept() {
    let f = fixture(&[("ssn", Style::Full)], &[("email", Style::Full)]);
    let input = "{ \"a\" : [1, 2.50e3, 123456789012345678901234567890],\n \"b\": \"x\" }";
    assert_eq!(f.run(input).0, None);
    let (out, counts) = f.run("{ \"ssn\" : \"1\",\n  \"big\": 123456789012345678901234567890 }");
    assert_eq!(
        out.as_deref(),
        Some("{ \"ssn\" : \"[REDACTED]\",\n  \"big\": 123456789012345678901234567890 }"),
        "formatting and number precision are kept"
    );
    assert_eq!(counts[0], 1);
}

#[test]
fn escaped_strings_are_decoded_before_detection_and_masks_are_escaped() {
    let f = fixture(&[("k", Style::Partial)], &[("email", Style::Full)]);
    let (out, _) = f.run(r#"{"m": "a\u0040example.com", "k": "x\"y\\z\n12345678"}"#);
    let v: Value = serde_json::from_str(&out.expect("changed")).expect("JSON");
    assert_eq!(v["m"], "[REDACTED]");
    assert_eq!(v["k"], "****5678");
}

#[test]
fn field_rules_count_every_masked_leaf() {
    let f = fixture(&[("$.users[*].email", Style::Full)], &[]);
    let (_, counts) = f.run(r#"{"users":[{"email":"a"},{"email":"b"},{"name":"c"}]}"#);
    assert_eq!(counts[0], 2);
}

#[test]
fn scalars_at_the_root_and_invalid_documents() {
    let f = fixture(&[], &[("email", Style::Full)]);
    assert_eq!(
        f.run("\"a@example.com\"").0.as_deref(),
        Some("\"[REDACTED]\"")
    );
    let rules = Rules {
        fields: &f.fields,
        detectors: &f.detectors,
        masker: &f.masker,
    };
    let mut counts = vec![0; 2];
    for bad in ["{", "{\"a\":}", "[1,]", "nul", "{} x", ""] {
        assert!(redact(bad, rules, &mut counts).is_err(), "{bad:?}");
    }
}

#[test]
fn deep_nesting_is_refused_by_the_validator_not_the_stack() {
    let f = fixture(&[], &[("email", Style::Full)]);
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let rules = Rules {
        fields: &f.fields,
        detectors: &f.detectors,
        masker: &f.masker,
    };
    assert!(redact(&deep, rules, &mut [0]).is_err());
}

#[test]
fn deferred_hashes_land_where_their_values_were() {
    // Field hashes and detector hashes, between escaped and non-ASCII text, in one body: each
    // hash must be the HMAC of its own value (e-mails hash lower-cased), written at once
    // (natively) or into a placeholder after the document (in Wasm).
    let mut f = fixture(&[("$..id", Style::Hash)], &[("email", Style::Hash)]);
    hashes_land_where_their_values_were(&f);
    f.masker = f.masker.deferring();
    hashes_land_where_their_values_were(&f);
}

fn hashes_land_where_their_values_were(f: &Fixture) {
    let input = r#"{"a":{"id":"x\"1","t":"é → write to Bob@Example.com, or dan@example.org é"},"b":[{"id":7},{"id":"ü"}],"c":"\n carol@example.net"}"#;
    let (out, counts) = f.run(input);
    let out: Value = serde_json::from_str(&out.expect("masked")).expect("output is JSON");
    let hash = |v: &str| f.masker.mask(Style::Hash, v);
    assert_eq!(out["a"]["id"], hash("x\"1"));
    assert_eq!(
        out["a"]["t"],
        format!(
            "é → write to {}, or {} é",
            hash("bob@example.com"),
            hash("dan@example.org")
        )
    );
    assert_eq!(out["b"][0]["id"], hash("7"));
    assert_eq!(out["b"][1]["id"], hash("ü"));
    assert_eq!(out["c"], format!("\n {}", hash("carol@example.net")));
    assert_eq!(counts[0], 3, "three ids");
    assert_eq!(counts[1], 3, "three e-mails");
}
