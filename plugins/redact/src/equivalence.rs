//! Differential tests: the optimised detectors and finders against the code they replaced
//! ([`crate::reference`]) and against the detectors' regexes, on generated texts built to hit
//! the edges (digit runs split by spaces and dashes, dots, colons, `+`, `@`, letters next to
//! matches, non-ASCII characters). Outputs and counts must be identical.

use crate::detect::{BUILTIN, Detector, Detectors, EMAIL_PATTERN};
use crate::finders;
use crate::mask::{Masker, Style};
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
