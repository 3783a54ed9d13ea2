//! Redaction of a JSON document in one pass over its text.
//!
//! The document is first validated by `serde_json` (which also bounds nesting depth); then a
//! hand-written scanner walks it, tracking the path of each value, and copies the text through
//! untouched except for the values it masks. So key order, number precision and formatting are
//! kept, and memory is the input plus the output, not a tree of values.
//!
//! - A value selected by a field rule is masked; an object or array is masked leaf by leaf (its
//!   strings, numbers and booleans become mask strings, `null` stays), so the shape survives.
//! - Every other string value, number and object key goes through the detectors.

use std::borrow::Cow;

use crate::detect::Detectors;
use crate::mask::{Masker, Style};
use crate::path::{Pattern, Seg};

/// A field rule with its mask style and rule index.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// What it selects.
    pub pattern: Pattern,
    /// How selected values are masked.
    pub style: Style,
    /// Index of its rule (for counting).
    pub rule: usize,
}

/// Everything a redaction pass needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'r> {
    /// Field rules.
    pub fields: &'r [FieldRule],
    /// Detectors for free text.
    pub detectors: &'r Detectors,
    /// Applies mask styles.
    pub masker: &'r Masker,
}

/// The redacted document, `Ok(None)` when nothing was masked, `Err` when the text is not JSON.
pub fn redact(input: &str, rules: Rules<'_>, counts: &mut [u64]) -> Result<Option<String>, String> {
    serde_json::from_str::<serde::de::IgnoredAny>(input).map_err(|e| e.to_string())?;
    let mut scanner = Scanner {
        src: input,
        b: input.as_bytes(),
        pos: 0,
        out: String::new(),
        copied: 0,
        path: Vec::new(),
        rules,
        counts,
    };
    scanner.ws();
    scanner.value(None)?;
    if scanner.out.is_empty() {
        return Ok(None);
    }
    scanner.out.push_str(&input[scanner.copied..]);
    Ok(Some(scanner.out))
}

/// Deepest nesting the scanner follows (the recursion is bounded by it).
const MAX_DEPTH: usize = 128;

/// A mask inherited from a field rule that selected an ancestor: (style, rule index).
type Inherited = Option<(Style, usize)>;

struct Scanner<'a, 'r, 'c> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    out: String,
    /// Input before this offset is already in `out`.
    copied: usize,
    path: Vec<Seg<'a>>,
    rules: Rules<'r>,
    counts: &'c mut [u64],
}

impl<'a> Scanner<'a, '_, '_> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.b.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at byte {}",
                char::from(byte),
                self.pos
            ))
        }
    }

    fn count(&mut self, rule: usize) {
        if let Some(c) = self.counts.get_mut(rule) {
            *c += 1;
        }
    }

    /// Put `text` (as a JSON string) in place of the input `start..end`.
    fn replace(&mut self, start: usize, end: usize, text: &str) {
        if self.out.capacity() == 0 {
            self.out.reserve(self.src.len() + 64);
        }
        self.out.push_str(&self.src[self.copied..start]);
        push_json_string(&mut self.out, text);
        self.copied = end;
    }

    fn value(&mut self, inherited: Inherited) -> Result<(), String> {
        // The validator's own limit is 128, but not for every way of reading: keep ours.
        if self.path.len() > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let mask = inherited.or_else(|| {
            self.rules
                .fields
                .iter()
                .find(|f| f.pattern.matches(&self.path))
                .map(|f| (f.style, f.rule))
        });
        match self.b.get(self.pos) {
            Some(b'{') => self.object(mask),
            Some(b'[') => self.array(mask),
            Some(b'"') => {
                let (start, end) = self.string_span()?;
                let text = self.decode(start, end)?;
                match mask {
                    Some((style, rule)) => {
                        let masked = self.rules.masker.mask(style, &text);
                        self.count(rule);
                        self.replace(start, end, &masked);
                    }
                    None => {
                        if let Some(redacted) =
                            self.rules
                                .detectors
                                .redact(&text, self.rules.masker, self.counts)
                        {
                            self.replace(start, end, &redacted);
                        }
                    }
                }
                Ok(())
            }
            Some(_) => {
                let start = self.pos;
                while self
                    .b
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
                {
                    self.pos += 1;
                }
                let literal = &self.src[start..self.pos];
                if literal.is_empty() {
                    return Err(format!("unexpected byte at {start}"));
                }
                match mask {
                    Some(_) if literal == "null" => {}
                    Some((style, rule)) => {
                        let masked = self.rules.masker.mask(style, literal);
                        self.count(rule);
                        self.replace(start, self.pos, &masked);
                    }
                    None if literal.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                        if let Some(redacted) =
                            self.rules
                                .detectors
                                .redact(literal, self.rules.masker, self.counts)
                        {
                            self.replace(start, self.pos, &redacted);
                        }
                    }
                    None => {}
                }
                Ok(())
            }
            None => Err("unexpected end of document".into()),
        }
    }

    fn object(&mut self, mask: Inherited) -> Result<(), String> {
        self.pos += 1;
        self.ws();
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let (start, end) = self.string_span()?;
            let key = self.decode(start, end)?;
            // Keys can be personal data too (a map keyed by e-mail address).
            if let Some(redacted) =
                self.rules
                    .detectors
                    .redact(&key, self.rules.masker, self.counts)
            {
                self.replace(start, end, &redacted);
            }
            self.ws();
            self.expect(b':')?;
            self.ws();
            self.path.push(Seg::Key(key));
            let result = self.value(mask);
            self.path.pop();
            result?;
            self.ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(format!("expected `,` or `}}` at byte {}", self.pos)),
            }
        }
    }

    fn array(&mut self, mask: Inherited) -> Result<(), String> {
        self.pos += 1;
        self.ws();
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.ws();
            self.path.push(Seg::Index(index));
            let result = self.value(mask);
            self.path.pop();
            result?;
            index += 1;
            self.ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(format!("expected `,` or `]` at byte {}", self.pos)),
            }
        }
    }

    /// The byte range of the string literal at `pos`, quotes included; moves past it.
    fn string_span(&mut self) -> Result<(usize, usize), String> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.b.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos));
                }
                Some(b'\\') => self.pos += 2,
                Some(_) => self.pos += 1,
                None => return Err("unterminated string".into()),
            }
        }
    }

    /// The text of the string literal `start..end`.
    fn decode(&self, start: usize, end: usize) -> Result<Cow<'a, str>, String> {
        let raw = self
            .src
            .get(start + 1..end - 1)
            .ok_or_else(|| format!("bad string at byte {start}"))?;
        if raw.contains('\\') {
            serde_json::from_str::<String>(&self.src[start..end])
                .map(Cow::Owned)
                .map_err(|e| e.to_string())
        } else {
            Ok(Cow::Borrowed(raw))
        }
    }
}

/// Append `text` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
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
        let out = f.value(
            json!({"address": {"street": "1 Main St", "zip": 12345, "geo": [1.5, null, true]}}),
        );
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
        let (out, counts) =
            f.run("{ \"ssn\" : \"1\",\n  \"big\": 123456789012345678901234567890 }");
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
}
