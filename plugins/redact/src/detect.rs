//! Detectors: find personal data in free text (a JSON string value, a text body, a query value).
//!
//! Each built-in detector pairs a candidate pattern with a check that keeps false positives
//! down: card numbers must pass the Luhn check (so random digit runs are left alone), IBANs the
//! ISO 7064 mod-97 check, US SSNs the SSA's never-issued ranges, IP addresses must parse. Custom
//! patterns are operators' regexes, compiled with size limits. All detectors see the original
//! text; their matches are merged leftmost-longest, so a mask is never scanned again (a hash mask
//! full of digits is not taken for a phone number).
//!
//! Cost: one pass over the text counts what detectors need (digits, `@`, `+`, dots, colons) and
//! a detector that cannot match is not run. The built-in candidates are found by hand-written
//! byte loops ([`crate::finders`], each the exact equivalent of its pattern); the value a mask
//! sees (digits only, lower case, ...) is only computed for `partial` and `hash`.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use regex::{Regex, RegexBuilder};

use crate::features::{AT, Features, PLUS};
use crate::finders;
use crate::mask::{Masker, Style};

/// Compiled program size limit for operators' patterns (the `regex` crate's `size_limit`).
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit per operators' pattern.
pub const PATTERN_DFA_LIMIT: usize = 2 << 20;

/// The built-in detectors, by config name.
pub const BUILTIN: &[&str] = &["email", "card", "iban", "ssn", "phone", "ipv4", "ipv6"];

/// The e-mail pattern, matched by the regex in text that is not all ASCII (`\w` and `\p{L}`
/// are Unicode classes) and by [`finders::find_email_ascii`] elsewhere.
pub const EMAIL_PATTERN: &str = r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.\p{L}{2,}";

/// What a detector looks for.
#[derive(Debug, Clone)]
enum Kind {
    Email(Regex),
    /// Digit groups (see [`finders::find_cards`]).
    Card,
    Iban,
    Ssn,
    /// International (`+` and 8–15 digits) and North American (`(555) 123-4567`, `555-123-4567`).
    Phone,
    Ipv4,
    Ipv6,
    Custom(Regex),
}

/// One detector with its mask style and the rule it counts under.
#[derive(Debug, Clone)]
pub struct Detector {
    kind: Kind,
    /// How its matches are masked.
    pub style: Style,
    /// Index of its rule (for counting).
    pub rule: usize,
}

fn build(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_DFA_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

impl Detector {
    /// A built-in detector by name (one of [`BUILTIN`]).
    pub fn builtin(name: &str, style: Style, rule: usize) -> Result<Detector, String> {
        let kind = match name {
            "email" => Kind::Email(build(EMAIL_PATTERN)?),
            "card" => Kind::Card,
            "iban" => Kind::Iban,
            "ssn" => Kind::Ssn,
            "phone" => Kind::Phone,
            "ipv4" => Kind::Ipv4,
            "ipv6" => Kind::Ipv6,
            other => {
                return Err(format!(
                    "unknown detector {other:?} (expected one of {})",
                    BUILTIN.join(", ")
                ));
            }
        };
        Ok(Detector { kind, style, rule })
    }

    /// An operator's pattern.
    pub fn custom(pattern: &str, style: Style, rule: usize) -> Result<Detector, String> {
        Ok(Detector {
            kind: Kind::Custom(build(pattern)?),
            style,
            rule,
        })
    }

    /// False when a text with these features cannot hold a match: each pattern's minimum (an
    /// e-mail address has an `@` and a dot, an SSN nine digits and two dashes, ...).
    #[inline]
    fn gate(&self, seen: &Features) -> bool {
        match self.kind {
            Kind::Email(_) => seen.has(AT) && seen.dots >= 1,
            Kind::Card => seen.digits >= 13,
            Kind::Iban => seen.digits >= 2,
            Kind::Ssn => seen.digits >= 9 && seen.dashes >= 2,
            Kind::Phone => international_gate(seen) || national_gate(seen),
            Kind::Ipv4 => seen.dots >= 3 && seen.digits >= 4,
            Kind::Ipv6 => seen.colons >= 2,
            Kind::Custom(_) => true,
        }
    }

    /// Push this detector's matches in `text` to `out`. A candidate rejected by a check still
    /// consumes its span, as a regex's successive matches do.
    fn find(&self, text: &str, seen: &Features, index: usize, out: &mut Vec<Hit>) {
        if !self.gate(seen) {
            return;
        }
        let b = text.as_bytes();
        let mut push = |start: usize, end: usize| {
            out.push(Hit {
                start,
                end,
                detector: index,
            })
        };
        // Successive matches of a finder, each searched for from the end of the one before.
        let each = |find: finders::Finder, f: &mut dyn FnMut(usize, usize)| {
            let mut from = 0;
            while let Some((start, end)) = find(b, from) {
                f(start, end);
                from = end;
            }
        };
        match &self.kind {
            Kind::Email(re) => {
                if text.is_ascii() {
                    each(finders::find_email_ascii, &mut push);
                } else {
                    for m in re.find_iter(text) {
                        push(m.start(), m.end());
                    }
                }
            }
            Kind::Card => finders::find_cards(b, push),
            Kind::Iban => each(finders::find_iban, &mut |start, end| {
                if !finders::alnum_before(b, start)
                    && let Some(end) = finders::iban_prefix(b, start, end)
                {
                    push(start, end);
                }
            }),
            Kind::Ssn => each(finders::find_ssn, &mut |start, end| {
                let joined = |c: Option<&u8>| c.is_some_and(|&c| c.is_ascii_digit() || c == b'-');
                let before = start.checked_sub(1).and_then(|i| b.get(i));
                if !joined(before)
                    && !joined(b.get(end))
                    && b.get(start..end).is_some_and(finders::ssn_issuable)
                {
                    push(start, end);
                }
            }),
            Kind::Phone => {
                if international_gate(seen) {
                    each(finders::find_international_phone, &mut |start, end| {
                        if let Some(end) = finders::phone_end(b, start, end) {
                            push(start, end);
                        }
                    });
                }
                if national_gate(seen) {
                    each(finders::find_national_phone, &mut |start, end| {
                        let before = start.checked_sub(1).and_then(|i| b.get(i));
                        let glued =
                            before.is_some_and(|c| c.is_ascii_alphanumeric() || b".-+".contains(c));
                        if !glued && !finders::continues_number(b, end) {
                            push(start, end);
                        }
                    });
                }
            }
            Kind::Ipv4 => each(finders::find_ipv4, &mut |start, end| {
                let before = start.checked_sub(1).and_then(|i| b.get(i));
                let glued = before.is_some_and(|&c| c.is_ascii_digit() || c == b'.');
                if !glued
                    && !finders::continues_number(b, end)
                    && text
                        .get(start..end)
                        .is_some_and(|s| s.parse::<Ipv4Addr>().is_ok())
                {
                    push(start, end);
                }
            }),
            Kind::Ipv6 => each(finders::find_ipv6, &mut |start, end| {
                if finders::alnum_before(b, start) {
                    return;
                }
                let Some(candidate) = text.get(start..end).map(|s| s.trim_end_matches('.')) else {
                    return;
                };
                if candidate.parse::<Ipv6Addr>().is_ok() {
                    push(start, start + candidate.len());
                }
            }),
            Kind::Custom(re) => {
                for m in re.find_iter(text) {
                    if !m.is_empty() {
                        push(m.start(), m.end());
                    }
                }
            }
        }
    }

    /// The value as masks see it, from the matched text: card, SSN and phone digits (with the
    /// `+` of an international number), a compact IBAN, a lower-case e-mail address, an IP
    /// address in canonical form.
    fn canonical(&self, matched: &str, out: &mut String) {
        let digits = |out: &mut String| {
            out.extend(matched.bytes().filter(u8::is_ascii_digit).map(char::from));
        };
        match &self.kind {
            Kind::Email(_) if matched.is_ascii() => {
                out.extend(matched.bytes().map(|c| char::from(c.to_ascii_lowercase())));
            }
            Kind::Email(_) => out.push_str(&matched.to_lowercase()),
            Kind::Card | Kind::Ssn => digits(out),
            Kind::Phone => {
                if matched.starts_with('+') {
                    out.push('+');
                }
                digits(out);
            }
            Kind::Iban => out.extend(matched.chars().filter(|&c| c != ' ')),
            Kind::Ipv4 => match matched.parse::<Ipv4Addr>() {
                Ok(ip) => {
                    let _ = write!(out, "{ip}");
                }
                Err(_) => out.push_str(matched),
            },
            Kind::Ipv6 => match matched.parse::<Ipv6Addr>() {
                Ok(ip) => {
                    let _ = write!(out, "{ip}");
                }
                Err(_) => out.push_str(matched),
            },
            Kind::Custom(_) => out.push_str(matched),
        }
    }
}

/// A match: byte range in the text and which detector found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Offset of its first byte.
    pub start: usize,
    /// Offset after its last byte.
    pub end: usize,
    detector: usize,
}

/// A `+`, and at least the 8 digits an international number keeps.
fn international_gate(seen: &Features) -> bool {
    seen.has(PLUS) && seen.digits >= 8
}

/// Ten digits and the `.` or `-` before the last four.
fn national_gate(seen: &Features) -> bool {
    seen.digits >= 10 && seen.dots + seen.dashes >= 1
}

/// The detectors of one config, applied together.
#[derive(Debug, Clone, Default)]
pub struct Detectors {
    list: Vec<Detector>,
}

impl Detectors {
    /// The detectors, in priority order (the first wins a tie on the same span).
    pub fn new(list: Vec<Detector>) -> Self {
        Self { list }
    }

    /// The matches in `text`, in `hits` (cleared first): merged leftmost first, then the
    /// longest, then the detector listed first; the matches they overlap are dropped.
    pub fn scan(&self, text: &str, hits: &mut Vec<Hit>) {
        self.scan_with(text, &Features::of(text), hits);
    }

    /// [`Detectors::scan`], with the features of `text` already counted.
    pub fn scan_with(&self, text: &str, seen: &Features, hits: &mut Vec<Hit>) {
        hits.clear();
        if self.list.is_empty() || text.is_empty() {
            return;
        }
        for (index, detector) in self.list.iter().enumerate() {
            detector.find(text, seen, index, hits);
        }
        if hits.len() > 1 {
            hits.sort_unstable_by_key(|h| (h.start, std::cmp::Reverse(h.end), h.detector));
            let mut copied = 0;
            hits.retain(|h| {
                let keep = h.start >= copied;
                if keep {
                    copied = h.end;
                }
                keep
            });
        }
    }

    /// Append the mask of `hit` (a match in `text` from [`Detectors::scan`]) to `out`, counting
    /// it under its rule. `canonical` is scratch space.
    pub fn mask(
        &self,
        text: &str,
        hit: Hit,
        masker: &Masker,
        counts: &mut [u64],
        canonical: &mut String,
        out: &mut String,
    ) {
        let Some(detector) = self.list.get(hit.detector) else {
            return;
        };
        canonical.clear();
        if detector.style != Style::Full {
            detector.canonical(text.get(hit.start..hit.end).unwrap_or(""), canonical);
        }
        masker.mask_into(detector.style, canonical, out);
        if let Some(count) = counts.get_mut(detector.rule) {
            *count += 1;
        }
    }

    /// The text with every match masked, counting each match under its rule in `counts`;
    /// `None` when nothing matched.
    pub fn redact(&self, text: &str, masker: &Masker, counts: &mut [u64]) -> Option<String> {
        let mut hits = Vec::new();
        self.scan(text, &mut hits);
        if hits.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut canonical = String::new();
        let mut copied = 0;
        for hit in hits {
            out.push_str(text.get(copied..hit.start).unwrap_or(""));
            self.mask(text, hit, masker, counts, &mut canonical, &mut out);
            copied = hit.end;
        }
        out.push_str(text.get(copied..).unwrap_or(""));
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finders::luhn;

    fn all() -> Detectors {
        let list = BUILTIN
            .iter()
            .enumerate()
            .map(|(i, name)| Detector::builtin(name, Style::Full, i).expect("builtin"))
            .collect();
        Detectors::new(list)
    }

    fn masker() -> Masker {
        Masker::new("[X]".into(), 4, Some(b"key-key-key-key-key"))
    }

    /// Redact with every built-in detector; returns the text and the counts per detector name.
    fn run(text: &str) -> (String, Vec<(&'static str, u64)>) {
        let mut counts = vec![0; BUILTIN.len()];
        let out = all()
            .redact(text, &masker(), &mut counts)
            .unwrap_or_else(|| text.to_owned());
        let named = BUILTIN
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n))
            .collect();
        (out, named)
    }

    #[test]
    fn emails() {
        assert_eq!(
            run("mail Alice.Smith+tag@mail.example.co.uk now").0,
            "mail [X] now"
        );
        assert_eq!(run("not@an-address").0, "not@an-address");
    }

    #[test]
    fn cards_must_pass_luhn() {
        assert_eq!(run("card 4111 1111 1111 1111.").0, "card [X].");
        assert_eq!(run("4111-1111-1111-1111").0, "[X]");
        assert_eq!(run("id=5500005555555559&x").0, "id=[X]&x");
        // One digit off: not a card, and not anything else either.
        assert_eq!(run("4111111111111112").0, "4111111111111112");
        assert_eq!(run("order 1234567890123456").0, "order 1234567890123456");
        // Digits glued to more digits are part of a longer number.
        assert_eq!(run("41111111111111110").0, "41111111111111110");
    }

    #[test]
    fn a_card_followed_by_other_numbers_is_still_found() {
        assert_eq!(run("4111 1111 1111 1111 2026 11").0, "[X] 2026 11");
        assert_eq!(
            run("ids 12 4111 1111 1111 1111").1,
            vec![("card", 1)],
            "the card inside the run is found"
        );
    }

    #[test]
    fn luhn_known_values() {
        for good in ["4111111111111111", "378282246310005", "6011111111111117"] {
            assert!(luhn(good.as_bytes()), "{good}");
        }
        for bad in ["4111111111111121", "1234567812345678", "12a4"] {
            assert!(!luhn(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn ibans_pass_mod_97() {
        assert_eq!(
            run("pay DE89 3704 0044 0532 0130 00 today").0,
            "pay [X] today"
        );
        assert_eq!(run("GB82WEST12345698765432").0, "[X]");
        assert_eq!(
            run("DE89370400440532013000 THE END").0,
            "[X] THE END",
            "greedy candidate is cut back to the valid IBAN"
        );
        assert_eq!(run("DE00370400440532013000").1, vec![]);
    }

    #[test]
    fn ssns_skip_never_issued_ranges() {
        assert_eq!(run("ssn 123-45-6789").0, "ssn [X]");
        assert_eq!(run("000-12-3456 666-12-3456 912-34-5678").1, vec![]);
        assert_eq!(run("1123-45-6789").1, vec![]);
    }

    #[test]
    fn phones() {
        assert_eq!(run("call +44 20 7946 0958, please").0, "call [X], please");
        assert_eq!(run("(555) 123-4567").0, "[X]");
        assert_eq!(run("tel 555-123-4567.").0, "tel [X].");
        // E.164 has at most 15 digits: trailing groups are dropped until the number fits.
        assert_eq!(run("+1 555 123 4567 2026 11 26 7").0, "[X] 11 26 7");
        assert_eq!(run("+1 555 123 4567 and more").0, "[X] and more");
        // Dates, versions and short numbers are not phones.
        assert_eq!(run("2026-11-26 v1.234.567.8901 +123").1, vec![]);
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(run("from 203.0.113.7, ok").0, "from [X], ok");
        assert_eq!(run("peer 2001:db8::1.").0, "peer [X].");
        assert_eq!(run("[::ffff:192.0.2.1]:80").0, "[[X]]:80");
        assert_eq!(run("1.2.3.4.5 999.1.1.1 at 10:30:00").1, vec![]);
        assert_eq!(run("mac 00:1a:2b:3c:4d:5e").1, vec![]);
    }

    #[test]
    fn masks_are_not_scanned_again() {
        let list = vec![
            Detector::builtin("email", Style::Hash, 0).expect("email"),
            Detector::builtin("phone", Style::Full, 1).expect("phone"),
            Detector::builtin("card", Style::Full, 2).expect("card"),
        ];
        let mut counts = vec![0; 3];
        let out = Detectors::new(list)
            .redact("a@example.com", &masker(), &mut counts)
            .expect("match");
        assert!(out.starts_with("hmac:"), "{out}");
        assert_eq!(counts, vec![1, 0, 0]);
    }

    #[test]
    fn custom_patterns_and_empty_matches() {
        let list = vec![
            Detector::custom("EMP-[0-9]{6}", Style::Partial, 0).expect("compiles"),
            Detector::custom("x*", Style::Full, 1).expect("compiles"),
        ];
        let mut counts = vec![0; 2];
        let out = Detectors::new(list).redact("id EMP-123456 y", &masker(), &mut counts);
        assert_eq!(out.as_deref(), Some("id ****3456 y"));
        assert_eq!(counts, vec![1, 0]);
    }

    #[test]
    fn oversized_patterns_are_refused() {
        let err = Detector::custom("(?:[a-z]{1,100}){1,100}", Style::Full, 0).expect_err("big");
        assert!(err.contains("size limit"), "{err}");
        assert!(Detector::builtin("passport", Style::Full, 0).is_err());
    }

    #[test]
    fn hash_canonical_forms_make_spellings_join() {
        let list = vec![Detector::builtin("card", Style::Hash, 0).expect("card")];
        let d = Detectors::new(list);
        let mut counts = vec![0];
        let a = d.redact("4111 1111 1111 1111", &masker(), &mut counts);
        let b = d.redact("4111111111111111", &masker(), &mut counts);
        assert_eq!(a, b);
        assert_eq!(counts, vec![2]);
    }

    #[test]
    fn non_ascii_text_is_handled() {
        assert_eq!(run("Grüße an jörg@example.com ✓").0, "Grüße an [X] ✓");
    }

    #[test]
    fn cards_split_by_spaces_or_dashes_but_not_both() {
        assert_eq!(run("a 4111 1111 1111 1111 b").0, "a [X] b");
        assert_eq!(run("a 4111-1111-1111-1111 b").0, "a [X] b");
        assert_eq!(run("3782 822463 10005").0, "[X]", "uneven groups");
        // One card has one kind of separator: the mixed run is not a card.
        assert_eq!(run("4111 1111-1111 1111").1, vec![]);
        // Double spaces end a run.
        assert_eq!(run("4111  1111 1111 1111").1, vec![]);
        // Luhn: one digit changed anywhere is no longer a card.
        assert_eq!(run("4111 1111 1111 1121").1, vec![]);
        assert_eq!(
            run("4111111111111111 4111111111111111").1,
            vec![("card", 2)]
        );
    }

    #[test]
    fn long_digit_runs_that_are_not_cards() {
        let long = "1".repeat(5000);
        assert_eq!(run(&long).1, vec![]);
        let grouped = "1234 ".repeat(1000);
        assert_eq!(run(&grouped).1, vec![]);
        // A card at the end of a long run of groups is still found.
        let mut tail = "12 ".repeat(500);
        tail.push_str("4111 1111 1111 1111");
        assert_eq!(run(&tail).1, vec![("card", 1)]);
    }

    #[test]
    fn emails_at_the_edges_of_the_text() {
        assert_eq!(run("a@example.com").0, "[X]");
        assert_eq!(run("a@example.com.").0, "[X].");
        assert_eq!(run("<a@example.com>").0, "<[X]>");
        assert_eq!(run("x a@b.co").0, "x [X]");
        // The match ends after the letters of the last label that starts with two.
        assert_eq!(run("a@example.com1").0, "[X]1");
        assert_eq!(run("a@b.cd1.ef").0, "[X]");
        assert_eq!(run("@example.com a@").1, vec![]);
    }

    #[test]
    fn unicode_around_and_inside_matches() {
        assert_eq!(run("é4111 1111 1111 1111é").0, "é[X]é");
        assert_eq!(run("日本 203.0.113.7 日本").0, "日本 [X] 日本");
        assert_eq!(run("✓+44 20 7946 0958✓").0, "✓[X]✓");
        // Unicode letters are part of an address: the regex decides in non-ASCII text.
        assert_eq!(run("mail ÉVE@EXAMPLE.COM").0, "mail [X]");
        let list = vec![Detector::builtin("email", Style::Hash, 0).expect("email")];
        let mut counts = vec![0];
        let upper = Detectors::new(list.clone()).redact("ÉVE@EXAMPLE.COM", &masker(), &mut counts);
        let lower = Detectors::new(list).redact("éve@example.com", &masker(), &mut counts);
        assert_eq!(upper, lower, "hashed lower case");
    }
}
