//! Detectors: find personal data in free text (a JSON string value, a text body, a query value).
//!
//! Each built-in detector pairs a candidate pattern with a check that keeps false positives
//! down: card numbers must pass the Luhn check (so random digit runs are left alone), IBANs the
//! ISO 7064 mod-97 check, US SSNs the SSA's never-issued ranges, IP addresses must parse. Custom
//! patterns are operators' regexes, compiled with size limits. All detectors see the original
//! text; their matches are merged leftmost-longest, so a mask is never scanned again (a hash mask
//! full of digits is not taken for a phone number).

use std::net::{Ipv4Addr, Ipv6Addr};

use regex::{Regex, RegexBuilder};

use crate::mask::{Masker, Style};

/// Compiled program size limit for operators' patterns (the `regex` crate's `size_limit`).
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit per operators' pattern.
pub const PATTERN_DFA_LIMIT: usize = 2 << 20;

/// The built-in detectors, by config name.
pub const BUILTIN: &[&str] = &["email", "card", "iban", "ssn", "phone", "ipv4", "ipv6"];

/// What a detector looks for.
#[derive(Debug, Clone)]
enum Kind {
    Email(Regex),
    /// Hand-written scan over digit groups (see [`find_cards`]).
    Card,
    Iban(Regex),
    Ssn(Regex),
    /// International (`+` and 8–15 digits) and North American (`(555) 123-4567`, `555-123-4567`).
    Phone {
        international: Regex,
        national: Regex,
    },
    Ipv4(Regex),
    Ipv6(Regex),
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
            "email" => Kind::Email(build(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.\p{L}{2,}")?),
            "card" => Kind::Card,
            "iban" => Kind::Iban(build(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}")?),
            "ssn" => Kind::Ssn(build(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")?),
            "phone" => Kind::Phone {
                international: build(r"\+[0-9][0-9 ().-]{5,24}[0-9]")?,
                national: build(r"(?:\([0-9]{3}\) ?|[0-9]{3}[.-])[0-9]{3}[.-][0-9]{4}")?,
            },
            "ipv4" => Kind::Ipv4(build(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")?),
            "ipv6" => Kind::Ipv6(build(r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*")?),
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

    fn find(&self, text: &str, seen: &Features, index: usize, out: &mut Vec<Hit>) {
        let mut push = |start: usize, end: usize, canonical: String| {
            out.push(Hit {
                start,
                end,
                detector: index,
                canonical,
            })
        };
        match &self.kind {
            Kind::Email(re) if seen.at => {
                for m in re.find_iter(text) {
                    push(m.start(), m.end(), m.as_str().to_lowercase());
                }
            }
            Kind::Card if seen.digits >= 13 => find_cards(text, &mut push),
            Kind::Iban(re) if seen.digits >= 2 => {
                for m in re.find_iter(text) {
                    if alnum_before(text, m.start()) {
                        continue;
                    }
                    if let Some((end, canonical)) = iban_prefix(text, m.start(), m.end()) {
                        push(m.start(), end, canonical);
                    }
                }
            }
            Kind::Ssn(re) if seen.digits >= 9 => {
                for m in re.find_iter(text) {
                    let b = text.as_bytes();
                    let before = m.start().checked_sub(1).map(|i| b[i]);
                    let after = b.get(m.end()).copied();
                    let joined = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit() || c == b'-');
                    if !joined(before) && !joined(after) && ssn_issuable(m.as_str()) {
                        push(m.start(), m.end(), digits(m.as_str()));
                    }
                }
            }
            Kind::Phone {
                international,
                national,
            } if seen.digits >= 10 || (seen.plus && seen.digits >= 8) => {
                if seen.plus {
                    for m in international.find_iter(text) {
                        if let Some(end) = phone_end(text, m.start(), m.end()) {
                            let number = &text[m.start()..end];
                            push(m.start(), end, format!("+{}", digits(number)));
                        }
                    }
                }
                for m in national.find_iter(text) {
                    let b = text.as_bytes();
                    let before = m.start().checked_sub(1).map(|i| b[i]);
                    let glued =
                        before.is_some_and(|c| c.is_ascii_alphanumeric() || b".-+".contains(&c));
                    if !glued && !continues_number(b, m.end()) {
                        push(m.start(), m.end(), digits(m.as_str()));
                    }
                }
            }
            Kind::Ipv4(re) if seen.dots >= 3 => {
                for m in re.find_iter(text) {
                    let b = text.as_bytes();
                    let before = m.start().checked_sub(1).map(|i| b[i]);
                    let glued = before.is_some_and(|c| c.is_ascii_digit() || c == b'.');
                    if glued || continues_number(b, m.end()) {
                        continue;
                    }
                    if let Ok(ip) = m.as_str().parse::<Ipv4Addr>() {
                        push(m.start(), m.end(), ip.to_string());
                    }
                }
            }
            Kind::Ipv6(re) if seen.colons >= 2 => {
                for m in re.find_iter(text) {
                    let b = text.as_bytes();
                    let before = m.start().checked_sub(1).map(|i| b[i]);
                    if before.is_some_and(|c| c.is_ascii_alphanumeric()) {
                        continue;
                    }
                    let candidate = m.as_str().trim_end_matches('.');
                    if let Ok(ip) = candidate.parse::<Ipv6Addr>() {
                        push(m.start(), m.start() + candidate.len(), ip.to_string());
                    }
                }
            }
            Kind::Custom(re) => {
                for m in re.find_iter(text) {
                    if !m.is_empty() {
                        push(m.start(), m.end(), m.as_str().to_owned());
                    }
                }
            }
            _ => {}
        }
    }
}

/// A match: byte range in the text, which detector found it, and the value as masks see it.
#[derive(Debug)]
struct Hit {
    start: usize,
    end: usize,
    detector: usize,
    canonical: String,
}

/// Cheap facts about a text that let detectors skip it without running a regex.
#[derive(Debug, Default)]
struct Features {
    digits: usize,
    at: bool,
    plus: bool,
    dots: usize,
    colons: usize,
}

impl Features {
    fn of(text: &str) -> Self {
        let mut f = Features::default();
        for &b in text.as_bytes() {
            match b {
                b'0'..=b'9' => f.digits += 1,
                b'@' => f.at = true,
                b'+' => f.plus = true,
                b'.' => f.dots += 1,
                b':' => f.colons += 1,
                _ => {}
            }
        }
        f
    }
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

    /// The text with every match masked, counting each match under its rule in `counts`;
    /// `None` when nothing matched.
    pub fn redact(&self, text: &str, masker: &Masker, counts: &mut [u64]) -> Option<String> {
        if self.list.is_empty() || text.is_empty() {
            return None;
        }
        let seen = Features::of(text);
        let mut hits = Vec::new();
        for (index, detector) in self.list.iter().enumerate() {
            detector.find(text, &seen, index, &mut hits);
        }
        if hits.is_empty() {
            return None;
        }
        // Leftmost first, then the longest, then the detector listed first.
        hits.sort_by(|a, b| {
            (a.start, std::cmp::Reverse(a.end), a.detector).cmp(&(
                b.start,
                std::cmp::Reverse(b.end),
                b.detector,
            ))
        });
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for hit in hits {
            if hit.start < copied {
                continue;
            }
            let Some(detector) = self.list.get(hit.detector) else {
                continue;
            };
            out.push_str(&text[copied..hit.start]);
            out.push_str(&masker.mask(detector.style, &hit.canonical));
            if let Some(count) = counts.get_mut(detector.rule) {
                *count += 1;
            }
            copied = hit.end;
        }
        out.push_str(&text[copied..]);
        Some(out)
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn alnum_before(text: &str, at: usize) -> bool {
    at.checked_sub(1)
        .is_some_and(|i| text.as_bytes()[i].is_ascii_alphanumeric())
}

/// True when the number before `end` goes on: a digit, or `.`/`-` and a digit.
fn continues_number(b: &[u8], end: usize) -> bool {
    match b.get(end) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.' | b'-') => b.get(end + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// Card numbers: runs of digit groups joined by single spaces or dashes; within a run, the
/// leftmost, longest span of whole groups, joined by one kind of separator, with 13–19 digits
/// that passes the Luhn check.
fn find_cards(text: &str, push: &mut impl FnMut(usize, usize, String)) {
    let b = text.as_bytes();
    let mut i = 0;
    let mut groups: Vec<(usize, usize, u8)> = Vec::new();
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // (start, end, separator before it) of each digit group in the run.
        groups.clear();
        let mut j = i;
        let mut separator = 0u8;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((start, j, separator));
            let joined =
                j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit();
            if !joined {
                break;
            }
            separator = b[j];
            j += 1;
        }
        let mut a = 0;
        while a < groups.len() {
            let mut best = None;
            let mut number = String::new();
            for (z, &(s, e, sep)) in groups.iter().enumerate().skip(a) {
                // One card is written with one kind of separator.
                if z > a + 1 && sep != groups[a + 1].2 {
                    break;
                }
                number.push_str(&text[s..e]);
                if number.len() > 19 {
                    break;
                }
                if number.len() >= 13 && luhn(&number) {
                    best = Some((z, number.clone()));
                }
            }
            match best {
                Some((z, number)) => {
                    push(groups[a].0, groups[z].1, number);
                    a = z + 1;
                }
                None => a += 1,
            }
        }
        i = j;
    }
}

/// The Luhn checksum over ASCII digits.
pub fn luhn(number: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in number.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The longest IBAN (15–34 characters, single spaces allowed between them) at the start of the
/// candidate `text[start..end]` that ends at a word boundary and passes mod-97: its end and its
/// compact form.
fn iban_prefix(text: &str, start: usize, end: usize) -> Option<(usize, String)> {
    let b = text.as_bytes();
    // (byte index after the character, character) for each IBAN character.
    let chars: Vec<(usize, u8)> = (start..end)
        .filter(|&i| b[i] != b' ')
        .map(|i| (i + 1, b[i]))
        .collect();
    for len in (15..=chars.len().min(34)).rev() {
        let after = chars[len - 1].0;
        if b.get(after).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        let compact: String = chars[..len].iter().map(|&(_, c)| char::from(c)).collect();
        if iban_checksum_ok(&compact) {
            return Some((after, compact));
        }
    }
    None
}

/// ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 must be 1.
pub fn iban_checksum_ok(iban: &str) -> bool {
    let (head, tail) = iban.split_at(4.min(iban.len()));
    let mut rem = 0u32;
    for c in tail.bytes().chain(head.bytes()) {
        let value = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if value >= 10 {
            (rem * 100 + value) % 97
        } else {
            (rem * 10 + value) % 97
        };
    }
    rem == 1
}

/// SSNs never issued: area 000, 666 or 900–999, group 00, serial 0000.
fn ssn_issuable(ssn: &str) -> bool {
    let mut parts = ssn.split('-');
    let (Some(area), Some(group), Some(serial)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Where an international number candidate really ends: trailing groups are dropped until it
/// has at most 15 digits; `None` when fewer than 8 are left or it runs into more digits.
fn phone_end(text: &str, start: usize, end: usize) -> Option<usize> {
    let b = text.as_bytes();
    if start
        .checked_sub(1)
        .is_some_and(|i| b[i].is_ascii_alphanumeric())
    {
        return None;
    }
    let mut end = end;
    loop {
        let count = b[start..end].iter().filter(|c| c.is_ascii_digit()).count();
        if count <= 15 {
            if count < 8 || continues_number(b, end) {
                return None;
            }
            return Some(end);
        }
        // Cut at the last separator and drop the separators before it.
        let cut = b[start..end].iter().rposition(|c| !c.is_ascii_digit())?;
        end = start + cut;
        while end > start && !b[end - 1].is_ascii_digit() {
            end -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(luhn(good), "{good}");
        }
        for bad in ["4111111111111121", "1234567812345678", "12a4"] {
            assert!(!luhn(bad), "{bad}");
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
}
