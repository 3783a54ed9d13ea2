//! Differential tests: the optimised detectors, finders and JSON pass against the code they
//! replaced ([`crate::reference`]) and against the detectors' regexes, on generated texts and
//! documents built to hit the edges (digit runs split by spaces and dashes, dots, colons, `+`,
//! `@`, letters next to matches, non-ASCII characters, escapes, invalid and deep documents).
//! Outputs, counts and error messages must be identical.

use crate::detect::{BUILTIN, Detector, Detectors, EMAIL_PATTERN};
use crate::finders;
use crate::json::{self, FieldRule};
use crate::mask::{Masker, Style};
use crate::path::Pattern;
use crate::reference;

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
        items.get(self.below(items.len())).copied().unwrap_or("")
    }
}

/// Pieces of text that detectors look at, or that sit next to what they look at.
const PIECES: &[&str] = &[
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "5500005555555559",
    "378282246310005",
    "4111 1111-1111 1111",
    "12 4111 1111 1111 1111 2026",
    "1234567890123456789012",
    "alice.smith+tag@mail.example.co.uk",
    "bob@example.com",
    "a@b.cd1.ef",
    "x@y.com1",
    "not@an-address",
    "@example.com",
    "a@b..cc",
    "Jörg@Exämple.com",
    "ÉVE@EXAMPLE.COM",
    "203.0.113.7",
    "1.2.3.4.5",
    "999.1.1.1",
    "01.2.3.4",
    "1234.5.6.7",
    "+44 20 7946 0958",
    "+1 555 123 4567 2026 11 26 7",
    "+1 (555) 123-4567",
    "+123",
    "(555) 123-4567",
    "(555)123-4567",
    "555-123-4567",
    "555.123.4567",
    "2026-11-26",
    "v1.234.567.8901",
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "GB82 WEST 1234 5698 7654 32",
    "DE00370400440532013000",
    "123-45-6789",
    "000-12-3456",
    "666-12-3456",
    "1123-45-6789",
    "2001:db8::1",
    "::ffff:192.0.2.1",
    "fe80::1%eth0",
    "10:30:00",
    "00:1a:2b:3c:4d:5e",
    "a:b:c",
    "1::",
    "EMP-123456",
];

/// Single characters and short glue.
const GLUE: &[&str] = &[
    " ", " ", " ", "-", ".", ":", "+", "@", "(", ")", "_", "%", "0", "1", "4", "9", "a", "Z", "e",
    "F", "x", ",", "\n", "é", "ü", "✓", "ß", "Σ", "\u{301}", "²", "İ", "日本", "  ",
];

fn text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(8) {
        if rng.below(3) == 0 {
            s.push_str(rng.pick(PIECES));
        } else {
            for _ in 0..=rng.below(3) {
                s.push_str(rng.pick(GLUE));
            }
        }
    }
    s
}

fn masker() -> Masker {
    // A replacement that needs escaping in JSON.
    Masker::new("[RE\"DA\\CTED]".into(), 4, Some(b"k-k-k-k-k-k-k-k-k"))
}

/// The same detectors, new and old, from (name or `re:pattern`, style).
fn detectors(
    list: &[(&str, Style)],
    first_rule: usize,
) -> (Detectors, reference::detect::Detectors) {
    let mut new = Vec::new();
    let mut old = Vec::new();
    for (i, (name, style)) in list.iter().enumerate() {
        let rule = first_rule + i;
        if let Some(pattern) = name.strip_prefix("re:") {
            new.push(Detector::custom(pattern, *style, rule).expect("pattern"));
            old.push(reference::detect::Detector::custom(pattern, *style, rule).expect("pattern"));
        } else {
            new.push(Detector::builtin(name, *style, rule).expect("builtin"));
            old.push(reference::detect::Detector::builtin(name, *style, rule).expect("builtin"));
        }
    }
    (Detectors::new(new), reference::detect::Detectors::new(old))
}

fn detector_configs() -> Vec<Vec<(&'static str, Style)>> {
    let styles = [Style::Full, Style::Partial, Style::Hash];
    let mut configs: Vec<Vec<(&str, Style)>> = Vec::new();
    for (i, name) in BUILTIN.iter().enumerate() {
        for style in styles {
            configs.push(vec![(name, style)]);
        }
        // Each one first, then the others: priorities on ties.
        let mut all = vec![(*name, styles[i % 3])];
        all.extend(
            BUILTIN
                .iter()
                .filter(|n| *n != name)
                .map(|n| (*n, Style::Hash)),
        );
        configs.push(all);
    }
    configs.push(vec![
        ("re:EMP-[0-9]{6}", Style::Partial),
        ("re:x*", Style::Full),
        ("card", Style::Partial),
        ("re:[0-9]+", Style::Hash),
    ]);
    configs
}

#[test]
fn finders_match_their_patterns() {
    let patterns: [(&str, finders::Finder); 7] = [
        (EMAIL_PATTERN, finders::find_email_ascii),
        (r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}", finders::find_iban),
        (r"[0-9]{3}-[0-9]{2}-[0-9]{4}", finders::find_ssn),
        (
            r"\+[0-9][0-9 ().-]{5,24}[0-9]",
            finders::find_international_phone,
        ),
        (
            r"(?:\([0-9]{3}\) ?|[0-9]{3}[.-])[0-9]{3}[.-][0-9]{4}",
            finders::find_national_phone,
        ),
        (r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", finders::find_ipv4),
        (
            r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*",
            finders::find_ipv6,
        ),
    ];
    let compiled: Vec<_> = patterns
        .iter()
        .map(|(p, find)| (*p, regex::Regex::new(p).expect("pattern"), *find))
        .collect();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..4000 {
        let t = text(&mut rng);
        for (pattern, re, find) in &compiled {
            // The e-mail finder stands for its pattern on ASCII text only.
            if *pattern == EMAIL_PATTERN && !t.is_ascii() {
                continue;
            }
            let want: Vec<(usize, usize)> =
                re.find_iter(&t).map(|m| (m.start(), m.end())).collect();
            let mut got = Vec::new();
            let mut from = 0;
            while let Some((s, e)) = find(t.as_bytes(), from) {
                got.push((s, e));
                from = e;
            }
            assert_eq!(got, want, "round {round}, {pattern} on {t:?}");
        }
    }
}

#[test]
fn detectors_agree_with_the_reference() {
    let configs = detector_configs();
    let built: Vec<_> = configs.iter().map(|c| detectors(c, 0)).collect();
    let m = masker();
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    for round in 0..3000 {
        let t = text(&mut rng);
        for (config, (new, old)) in configs.iter().zip(&built) {
            let mut new_counts = vec![0; config.len()];
            let mut old_counts = vec![0; config.len()];
            assert_eq!(
                new.redact(&t, &m, &mut new_counts),
                old.redact(&t, &m, &mut old_counts),
                "round {round}, {config:?} on {t:?}"
            );
            assert_eq!(new_counts, old_counts, "round {round}, {config:?} on {t:?}");
        }
    }
}

/// A JSON string literal for `s`, with some characters escaped in one of the ways JSON allows.
fn json_string(rng: &mut Rng, s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match (c, rng.below(6)) {
            ('"', _) => out.push_str("\\\""),
            ('\\', _) => out.push_str("\\\\"),
            ('\n', _) => out.push_str("\\n"),
            (c, 0) if u32::from(c) > 0xffff => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            (c, 0) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            ('/', 1) => out.push_str("\\/"),
            (c, _) => out.push(c),
        }
    }
    out.push('"');
    out
}

const KEYS: &[&str] = &[
    "email",
    "Email",
    "card",
    "ssn",
    "user",
    "name",
    "x-pii-1",
    "a",
    "bob@example.com",
    "e-mail",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-12.5e+3",
    "4111111111111111",
    "-4111111111111111",
    "4111111111111112",
    "123456789012345678901234567890",
    "2.50e3",
    "1E-7",
    "203",
];

fn ws(rng: &mut Rng) -> &'static str {
    [" ", "", "", "\n  ", "\t", "\r\n"]
        .get(rng.below(6))
        .copied()
        .unwrap_or("")
}

fn json_value(rng: &mut Rng, depth: usize, out: &mut String) {
    let kind = if depth > 4 {
        rng.below(4)
    } else {
        rng.below(7)
    };
    match kind {
        0 | 1 => {
            let t = text(rng);
            out.push_str(&json_string(rng, &t));
        }
        2 => out.push_str(rng.pick(NUMBERS)),
        3 => out.push_str(rng.pick(&["true", "false", "null"])),
        4 | 5 => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws(rng));
                let key = if rng.below(4) == 0 {
                    text(rng)
                } else {
                    rng.pick(KEYS).to_owned()
                };
                out.push_str(&json_string(rng, &key));
                out.push_str(ws(rng));
                out.push(':');
                out.push_str(ws(rng));
                json_value(rng, depth + 1, out);
                out.push_str(ws(rng));
            }
            out.push('}');
        }
        _ => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws(rng));
                json_value(rng, depth + 1, out);
                out.push_str(ws(rng));
            }
            out.push(']');
        }
    }
}

/// A document, sometimes broken by one edit.
fn document(rng: &mut Rng) -> String {
    let mut doc = String::new();
    doc.push_str(ws(rng));
    json_value(rng, 0, &mut doc);
    doc.push_str(ws(rng));
    if rng.below(4) == 0 {
        let chars: Vec<char> = doc.chars().collect();
        let at = rng.below(chars.len() + 1);
        let edit = rng.pick(&[
            "", "\"", ",", "]", "}", "\\", "x", "0", ".", "-", "e", " ", "\u{1}", "\\ud800", "[",
        ]);
        let cut = if rng.below(2) == 0 { 1 } else { 0 };
        let mut broken: String = chars.iter().take(at).collect();
        broken.push_str(edit);
        broken.extend(chars.iter().skip(at + cut));
        doc = broken;
    }
    doc
}

fn field_rules(list: &[(&str, Style)]) -> Vec<FieldRule> {
    list.iter()
        .enumerate()
        .map(|(rule, (p, style))| FieldRule {
            pattern: Pattern::parse(p).expect("pattern"),
            style: *style,
            rule,
        })
        .collect()
}

fn same_json(fields: &[FieldRule], new: &Detectors, old: &reference::detect::Detectors, doc: &str) {
    let m = masker();
    let n = fields.len() + 8;
    let (mut new_counts, mut old_counts) = (vec![0; n], vec![0; n]);
    let got = json::redact(
        doc,
        json::Rules {
            fields,
            detectors: new,
            masker: &m,
        },
        &mut new_counts,
    );
    let want = reference::json::redact(
        doc,
        reference::json::Rules {
            fields,
            detectors: old,
            masker: &m,
        },
        &mut old_counts,
    );
    assert_eq!(got, want, "{doc:?}");
    assert_eq!(new_counts, old_counts, "{doc:?}");
}

#[test]
fn json_agrees_with_the_reference() {
    let field_sets: Vec<Vec<FieldRule>> = vec![
        Vec::new(),
        field_rules(&[("$..email", Style::Hash)]),
        field_rules(&[
            ("email", Style::Full),
            ("$.a[*].card", Style::Partial),
            ("$..user..name", Style::Hash),
            ("$[1]", Style::Full),
            ("$.*", Style::Partial),
        ]),
    ];
    let detector_sets = [
        vec![],
        vec![("card", Style::Partial)],
        vec![("email", Style::Full), ("card", Style::Hash)],
        BUILTIN.iter().map(|n| (*n, Style::Partial)).collect(),
        vec![("re:[0-9]{4}", Style::Full), ("re:a@", Style::Partial)],
    ];
    let mut configs = Vec::new();
    for fields in &field_sets {
        for list in &detector_sets {
            let (new, old) = detectors(list, fields.len());
            configs.push((fields, new, old));
        }
    }
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    for _ in 0..1500 {
        let doc = document(&mut rng);
        for (fields, new, old) in &configs {
            same_json(fields, new, old, &doc);
        }
    }
}

#[test]
fn json_edges_agree_with_the_reference() {
    let fields = field_rules(&[("$..email", Style::Hash), ("card", Style::Partial)]);
    let (new, old) = detectors(&[("email", Style::Full), ("card", Style::Partial)], 2);
    let mut docs: Vec<String> = vec![
        String::new(),
        " ".into(),
        "{} x".into(),
        "[1,]".into(),
        "{\"a\":1,}".into(),
        "01".into(),
        "-".into(),
        "1.".into(),
        ".5".into(),
        "1e".into(),
        "+1".into(),
        "nul".into(),
        "truex".into(),
        "\"\\ud800\"".into(),
        "{\"a\":\"x\\udc00\", \"email\": \"a@b.cc\"}".into(),
        "[\"a@b.cc\", \"\\ud83d\\ude00 bob@example.com\"]".into(),
        "\"tab\tinside\"".into(),
        "\"\\x\"".into(),
        "\"\\x0041\"".into(),
        "\"\\U0041\"".into(),
        "\"\\u00E9 \\u0041@b.cc\\/\\b\\f\\r\\t\"".into(),
        "\"\\u12\"".into(),
        "{\"card\": {\"n\": [4111111111111111, true, null, \"x\"]}, \"email\": false}".into(),
        "[\"a\" \"b\"]".into(),
        "{\"a\" 1}".into(),
        "{1: 2}".into(),
    ];
    for depth in [126, 127, 128, 129, 130, 131, 1000] {
        docs.push("[".repeat(depth) + &"]".repeat(depth));
        docs.push("[".repeat(depth) + "\"a@b.cc\"" + &"]".repeat(depth));
        docs.push("{\"email\":".repeat(depth) + "1" + &"}".repeat(depth));
        // Deep and broken: the syntax error wins.
        docs.push("[\"a@b.cc\",".to_owned() + &"[".repeat(depth) + &"]".repeat(depth - 1));
    }
    for doc in &docs {
        same_json(&fields, &new, &old, doc);
    }
}
