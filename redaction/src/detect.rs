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

use crate::features::{AT, COLON, Classes, DASH, DIGIT, DOT, Features, PLUS, Presence};
use crate::finders;
use crate::mask::{Deferred, Masker, Style};

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

    /// The feature classes [`Detector::gate`] looks at.
    fn needs(&self) -> u8 {
        match self.kind {
            Kind::Email(_) => AT | DOT,
            Kind::Card | Kind::Iban => DIGIT,
            Kind::Ssn => DIGIT | DASH,
            Kind::Phone => DIGIT | PLUS | DOT | DASH,
            Kind::Ipv4 => DIGIT | DOT,
            Kind::Ipv6 => COLON,
            Kind::Custom(_) => 0,
        }
    }

    /// The classes [`Detector::gate`] requires to be present at all (a subset of
    /// [`Detector::needs`]).
    fn requires(&self) -> u8 {
        match self.kind {
            Kind::Email(_) => AT | DOT,
            Kind::Card | Kind::Iban | Kind::Phone => DIGIT,
            Kind::Ssn => DIGIT | DASH,
            Kind::Ipv4 => DIGIT | DOT,
            Kind::Ipv6 => COLON,
            Kind::Custom(_) => 0,
        }
    }

    /// False when a text of `len` bytes with these features cannot hold a match: each
    /// pattern's minimum (an e-mail address has an `@` and a dot, an SSN nine digits and two
    /// dashes, an IBAN 15 characters, ...).
    #[inline]
    fn gate(&self, seen: &Features, len: usize) -> bool {
        match self.kind {
            Kind::Email(_) => seen.has(AT) && seen.dots >= 1,
            Kind::Card => seen.digits >= 13,
            Kind::Iban => seen.digits >= 2 && len >= 15,
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
        if !self.gate(seen, text.len()) {
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
#[derive(Debug, Clone)]
pub struct Detectors {
    list: Vec<Detector>,
    classes: Classes,
    presence: Presence,
}

impl Default for Detectors {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Detectors {
    /// The detectors, in priority order (the first wins a tie on the same span).
    pub fn new(list: Vec<Detector>) -> Self {
        let needed = list.iter().fold(0, |n, d| n | d.needs());
        Self {
            classes: Classes::new(needed),
            presence: Presence::new(list.iter().map(Detector::requires)),
            list,
        }
    }

    /// True when there is no detector.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The byte classes their gates need counted.
    pub fn classes(&self) -> &Classes {
        &self.classes
    }

    /// False when no detector can match a text with these features (a first look: the
    /// classes present; [`Detectors::scan_with`] then checks each detector's counts).
    #[inline(always)]
    pub fn may_match(&self, seen: &Features) -> bool {
        self.presence.allows(seen)
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

    /// The mask style of `hit` (a match in `text` from [`Detectors::scan`]), with the canonical
    /// form of the match (what a hash or partial mask sees) in `canonical`; counts the match
    /// under its rule.
    pub fn hit_style(
        &self,
        text: &str,
        hit: Hit,
        counts: &mut [u64],
        canonical: &mut String,
    ) -> Option<Style> {
        let detector = self.list.get(hit.detector)?;
        canonical.clear();
        if detector.style != Style::Full {
            detector.canonical(text.get(hit.start..hit.end).unwrap_or(""), canonical);
        }
        if let Some(count) = counts.get_mut(detector.rule) {
            *count += 1;
        }
        Some(detector.style)
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
        let mut deferred = Deferred::default();
        let mut copied = 0;
        for hit in hits {
            out.push_str(text.get(copied..hit.start).unwrap_or(""));
            if let Some(style) = self.hit_style(text, hit, counts, &mut canonical) {
                masker.mask_deferring(style, &canonical, &mut out, &mut deferred);
            }
            copied = hit.end;
        }
        out.push_str(text.get(copied..).unwrap_or(""));
        masker.fill(&mut out, &mut deferred);
        Some(out)
    }
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
