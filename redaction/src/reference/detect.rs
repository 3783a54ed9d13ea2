//! The detectors as they were before the hand-written finders: `regex` candidates, checks,
//! leftmost-longest merge. Kept (tests only) as the oracle the optimised [`crate::detect`] is
//! compared with on generated texts (`crate::equivalence`).

use std::net::{Ipv4Addr, Ipv6Addr};

use regex::{Regex, RegexBuilder};

use crate::mask::{Masker, Style};

use crate::detect::{BUILTIN, PATTERN_DFA_LIMIT, PATTERN_SIZE_LIMIT};

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
fn luhn(number: &str) -> bool {
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
fn iban_checksum_ok(iban: &str) -> bool {
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
