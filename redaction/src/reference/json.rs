//! The JSON redaction as it was before the single validating pass: `serde_json` validates,
//! then a scanner walks the text. Kept (tests only) as the oracle the optimised [`crate::json`]
//! is compared with on generated documents (`crate::equivalence`).

use std::borrow::Cow;

use super::detect::Detectors;
use crate::json::FieldRule;
use crate::mask::{Masker, Style};
use crate::path::Seg;

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
