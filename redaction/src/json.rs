//! Redaction of a JSON document in one pass over its text.
//!
//! A hand-written scanner walks the document, validating it as it goes (the grammar
//! `serde_json` accepts), tracking the path of each value when there are field rules, and
//! copies the text through untouched except for the values it masks. So key order, number
//! precision and formatting are kept, and memory is the input plus the output, not a tree of
//! values. A document with nothing to mask costs one read and no output.
//!
//! - A value selected by a field rule is masked; an object or array is masked leaf by leaf (its
//!   strings, numbers and booleans become mask strings, `null` stays), so the shape survives.
//! - Every other string value, number and object key goes through the detectors.
//! - A document that is not JSON is reported with `serde_json`'s message, and its values are not
//!   counted; nesting deeper than [`MAX_DEPTH`] and escapes that are not Unicode text (lone
//!   surrogates) are refused too.

use std::borrow::Cow;

use crate::detect::{Detectors, Hit};
use crate::features::{Features, STRING_END};
use crate::jsonstr::{FeatureWords, before_first, ends, push_escaped, word_at};
use crate::mask::{Deferred, Masker, Style};
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

/// Deepest nesting the scanner follows (the recursion is bounded by it).
pub const MAX_DEPTH: usize = 128;

/// Why the scan stopped.
#[derive(Debug, Clone, Copy)]
enum Fail {
    /// Not JSON: `serde_json` says why.
    Syntax,
    /// Nested deeper than [`MAX_DEPTH`].
    Depth,
    /// A string whose escapes do not decode (`serde_json`'s message is kept by the scanner).
    Decode,
}

/// The redacted document, `Ok(None)` when nothing was masked, `Err` when the text is not JSON.
pub fn redact(input: &str, rules: Rules<'_>, counts: &mut [u64]) -> Result<Option<String>, String> {
    // Counts to restore if the text turns out not to be JSON (no allocation for a few rules).
    let mut few = [0u64; 16];
    let before: Cow<'_, [u64]> = match few.get_mut(..counts.len()) {
        Some(few) => {
            few.copy_from_slice(counts);
            Cow::Borrowed(few)
        }
        None => Cow::Owned(counts.to_vec()),
    };
    let mut scanner = Scanner {
        src: input,
        b: input.as_bytes(),
        pos: 0,
        out: String::new(),
        copied: 0,
        track: !rules.fields.is_empty(),
        path: Vec::new(),
        depth: 0,
        rules,
        counts: &mut *counts,
        hits: Vec::new(),
        canonical: String::new(),
        mask: String::new(),
        deferred: Deferred::default(),
        decode_error: String::new(),
        classes: rules.detectors.classes(),
        feature_words: FeatureWords::new(rules.detectors.classes()),
    };
    match scanner.document() {
        Ok(()) if scanner.out.is_empty() => Ok(None),
        Ok(()) => {
            scanner
                .out
                .push_str(input.get(scanner.copied..).unwrap_or(""));
            rules.masker.fill(&mut scanner.out, &mut scanner.deferred);
            Ok(Some(scanner.out))
        }
        Err(fail) => {
            let at = scanner.pos;
            // Not JSON: nothing was redacted, so nothing is counted.
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(input) {
                counts.copy_from_slice(&before);
                return Err(e.to_string());
            }
            Err(match fail {
                Fail::Syntax => format!("invalid JSON at byte {at}"),
                Fail::Depth => format!("nested deeper than {MAX_DEPTH} levels"),
                Fail::Decode => scanner.decode_error,
            })
        }
    }
}

/// A mask inherited from a field rule that selected an ancestor: (style, rule index).
type Inherited = Option<(Style, usize)>;

/// A string literal: `start..end` with the quotes, whether it has escapes, and the features
/// of its raw text.
#[derive(Clone, Copy)]
struct Literal {
    start: usize,
    end: usize,
    escaped: bool,
    seen: Features,
}

struct Scanner<'a, 'r, 'c> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    out: String,
    /// Input before this offset is already in `out`.
    copied: usize,
    /// Field rules need the path.
    track: bool,
    path: Vec<Seg<'a>>,
    depth: usize,
    rules: Rules<'r>,
    counts: &'c mut [u64],
    /// Scratch space, kept across values.
    hits: Vec<Hit>,
    canonical: String,
    mask: String,
    /// Hash masks whose digits are written when the document is done.
    deferred: Deferred,
    /// `serde_json`'s message for a string that does not decode.
    decode_error: String,
    /// What ends a string and what its detectors count.
    classes: &'r crate::features::Classes,
    feature_words: FeatureWords,
}

impl<'a> Scanner<'a, '_, '_> {
    fn document(&mut self) -> Result<(), Fail> {
        self.ws();
        self.value(None)?;
        self.ws();
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(Fail::Syntax)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Fail> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fail::Syntax)
        }
    }

    fn count(&mut self, rule: usize) {
        if let Some(c) = self.counts.get_mut(rule) {
            *c += 1;
        }
    }

    /// Copy the input up to `start` to the output, which is about to get a replacement.
    fn catch_up(&mut self, start: usize) {
        if self.out.capacity() == 0 {
            self.out.reserve(self.src.len() + 64);
        }
        self.out
            .push_str(self.src.get(self.copied..start).unwrap_or(""));
    }

    /// The first field rule that selects the value at the current path.
    fn selected(&self) -> Inherited {
        self.rules
            .fields
            .iter()
            .find(|f| f.pattern.matches(&self.path))
            .map(|f| (f.style, f.rule))
    }

    fn value(&mut self, inherited: Inherited) -> Result<(), Fail> {
        if self.depth > MAX_DEPTH {
            return Err(Fail::Depth);
        }
        let mask = match inherited {
            Some(m) => Some(m),
            None if self.track => self.selected(),
            None => None,
        };
        match self.peek() {
            Some(b'{') => self.object(mask),
            Some(b'[') => self.array(mask),
            Some(b'"') => {
                let mut literal = self.string()?;
                let text = self.text(&mut literal)?;
                match mask {
                    Some((style, rule)) => {
                        self.count(rule);
                        self.masked(literal.start, literal.end, style, &text);
                    }
                    None => self.detect(literal.start, literal.end, &text, &literal.seen),
                }
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                self.number()?;
                let number = self.src.get(start..self.pos).unwrap_or("");
                match mask {
                    Some((style, rule)) => {
                        self.count(rule);
                        self.masked(start, self.pos, style, number);
                    }
                    None if !self.rules.detectors.is_empty() => {
                        self.detect(start, self.pos, number, &Features::of(number));
                    }
                    None => {}
                }
                Ok(())
            }
            Some(b't') => self.word("true", mask),
            Some(b'f') => self.word("false", mask),
            Some(b'n') => self.word("null", mask),
            _ => Err(Fail::Syntax),
        }
    }

    /// `true`, `false` or `null`; a selected `null` stays.
    fn word(&mut self, word: &'static str, mask: Inherited) -> Result<(), Fail> {
        let start = self.pos;
        if !self
            .b
            .get(start..)
            .is_some_and(|r| r.starts_with(word.as_bytes()))
        {
            return Err(Fail::Syntax);
        }
        self.pos += word.len();
        if let Some((style, rule)) = mask
            && word != "null"
        {
            self.count(rule);
            self.masked(start, self.pos, style, word);
        }
        Ok(())
    }

    /// A number as `serde_json` reads it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<(), Fail> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(Fail::Syntax);
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Fail::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Fail::Syntax);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Fail::Syntax);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn object(&mut self, mask: Inherited) -> Result<(), Fail> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(Fail::Syntax);
            }
            let mut literal = self.string()?;
            let key = self.text(&mut literal)?;
            // Keys can be personal data too (a map keyed by e-mail address).
            self.detect(literal.start, literal.end, &key, &literal.seen);
            self.ws();
            self.expect(b':')?;
            self.ws();
            if self.track {
                self.path.push(Seg::Key(key));
            }
            self.depth += 1;
            let result = self.value(mask);
            self.depth -= 1;
            if self.track {
                self.path.pop();
            }
            result?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Fail::Syntax),
            }
        }
    }

    fn array(&mut self, mask: Inherited) -> Result<(), Fail> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.ws();
            if self.track {
                self.path.push(Seg::Index(index));
            }
            self.depth += 1;
            let result = self.value(mask);
            self.depth -= 1;
            if self.track {
                self.path.pop();
            }
            result?;
            index += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Fail::Syntax),
            }
        }
    }

    /// The string literal at `pos` (a `"`), validated; moves past it.
    #[inline(always)]
    fn string(&mut self) -> Result<Literal, Fail> {
        let start = self.pos;
        let mut i = start + 1;
        let mut escaped = false;
        let mut seen = Features::default();
        loop {
            // Eight bytes at a time, counting features, up to a byte that ends the plain run.
            while let Some(word) = word_at(self.b, i) {
                let end = ends(word);
                let features = self.feature_words.in_range(word);
                if features != 0 {
                    self.feature_words
                        .count(word, features & before_first(end), &mut seen);
                }
                if end != 0 {
                    i += (end.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            let Some(&c) = self.b.get(i) else {
                return Err(Fail::Syntax);
            };
            let class = self.classes.table[usize::from(c)];
            if class == 0 {
                i += 1;
                continue;
            }
            if class != STRING_END {
                seen.add(class);
                i += 1;
                continue;
            }
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i += match self.b.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u')
                            if self
                                .b
                                .get(i + 2..i + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            6
                        }
                        _ => return Err(Fail::Syntax),
                    };
                }
                _ => return Err(Fail::Syntax),
            }
        }
        self.pos = i + 1;
        Ok(Literal {
            start,
            end: i + 1,
            escaped,
            seen,
        })
    }

    /// The text of a string literal; for one with escapes, its features are counted again on
    /// the decoded text.
    #[inline(always)]
    fn text(&mut self, literal: &mut Literal) -> Result<Cow<'a, str>, Fail> {
        let src: &'a str = self.src;
        if literal.escaped {
            let raw = src.get(literal.start..literal.end).unwrap_or("");
            match serde_json::from_str::<String>(raw) {
                Ok(text) => {
                    literal.seen = Features::of(&text);
                    Ok(Cow::Owned(text))
                }
                Err(e) => {
                    self.decode_error = e.to_string();
                    Err(Fail::Decode)
                }
            }
        } else {
            Ok(Cow::Borrowed(
                src.get(literal.start + 1..literal.end - 1).unwrap_or(""),
            ))
        }
    }

    /// Put the mask of `text` (as a JSON string) in place of the input `start..end`.
    fn masked(&mut self, start: usize, end: usize, style: Style, text: &str) {
        self.catch_up(start);
        self.mask.clear();
        let first = self.deferred.len();
        self.rules
            .masker
            .mask_deferring(style, text, &mut self.mask, &mut self.deferred);
        self.out.push('"');
        self.push_mask(first);
        self.out.push('"');
        self.copied = end;
    }

    /// Append the mask in scratch space, as JSON string content, moving the hashes deferred
    /// since the `first` one with it (a hash mask is hex digits: escaping leaves it as it is).
    fn push_mask(&mut self, first: usize) {
        self.deferred.shift_from(first, self.out.len());
        push_escaped(&mut self.out, &self.mask);
    }

    /// Run the detectors over `text` (the value at input `start..end`, with features `seen`);
    /// when they match, put the text with its matches masked (as a JSON string) in its place.
    #[inline(always)]
    fn detect(&mut self, start: usize, end: usize, text: &str, seen: &Features) {
        let detectors = self.rules.detectors;
        if !detectors.may_match(seen) {
            return;
        }
        detectors.scan_with(text, seen, &mut self.hits);
        if self.hits.is_empty() {
            return;
        }
        self.catch_up(start);
        self.out.push('"');
        let mut copied = 0;
        let hits = std::mem::take(&mut self.hits);
        for &hit in &hits {
            push_escaped(&mut self.out, text.get(copied..hit.start).unwrap_or(""));
            self.mask.clear();
            let first = self.deferred.len();
            if let Some(style) = detectors.hit_style(text, hit, self.counts, &mut self.canonical) {
                let masker = self.rules.masker;
                masker.mask_deferring(style, &self.canonical, &mut self.mask, &mut self.deferred);
            }
            self.push_mask(first);
            copied = hit.end;
        }
        self.hits = hits;
        push_escaped(&mut self.out, text.get(copied..).unwrap_or(""));
        self.out.push('"');
        self.copied = end;
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
