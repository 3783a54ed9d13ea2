//! JSON string literals, the hot part of reading a document: finding where a plain run ends
//! eight bytes at a time (SWAR, plain 64-bit arithmetic that is just as fast in WebAssembly), and
//! escaping text back into a literal.

use crate::features::Classes;

/// Bytes that end a plain run inside a string: `"`, `\` and control characters.
pub fn ends_run(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The range of bytes with a feature class (`Classes::lo..=hi`), as two addends: the high bit
/// of `low7 + ONES * (0x80 - n)` is set in each byte that is `n` or more.
#[derive(Clone, Copy)]
pub struct FeatureWords {
    from: u64,
    past: u64,
}

impl FeatureWords {
    /// The range of `classes`.
    pub fn new(classes: &Classes) -> Self {
        if classes.lo > classes.hi || classes.hi >= 0x80 {
            // No byte is 0x80 or more in 7-bit lanes: an empty range.
            return FeatureWords { from: 0, past: 0 };
        }
        FeatureWords {
            from: ONES * (0x80 - u64::from(classes.lo)),
            past: ONES * (0x7f - u64::from(classes.hi)),
        }
    }
}

/// One bit (the high bit of the byte) for each byte of `word` that ends a plain run in a string
/// (below 0x20, `"`, `\\`) or is in the range of bytes with a feature class (which includes
/// some without one). Bytes of 0x80 and above are never marked. Each byte is computed apart
/// (7-bit lanes, no carry between bytes), so the lowest mark is exact.
#[inline(always)]
pub fn interesting(word: u64, features: FeatureWords) -> u64 {
    let ascii = !word & HIGH;
    let low = word & LOW7;
    let at_least = |addend: u64| (low + addend) & HIGH;
    let equal = |c: u64| !((low ^ (ONES * c)) + LOW7) & HIGH;
    let control = !at_least(ONES * (0x80 - 0x20));
    let quote = equal(u64::from(b'"'));
    let backslash = equal(u64::from(b'\\'));
    let feature = at_least(features.from) & !at_least(features.past);
    (control | quote | backslash | feature) & ascii
}

/// Append `text` escaped for a JSON string literal (`"`, `\` and control characters).
pub fn push_escaped(out: &mut String, text: &str) {
    let mut plain = 0;
    for (i, &c) in text.as_bytes().iter().enumerate() {
        if !ends_run(c) {
            continue;
        }
        out.push_str(text.get(plain..i).unwrap_or(""));
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c => {
                out.push_str("\\u00");
                out.push(hex_digit(c >> 4));
                out.push(hex_digit(c & 0x0f));
            }
        }
        plain = i + 1;
    }
    out.push_str(text.get(plain..).unwrap_or(""));
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_marks_are_exact_per_byte() {
        use crate::features::{AT, DASH, DIGIT, DOT, PLUS};
        // Every byte value in every position, next to bytes that borrow or carry in naive SWAR.
        for needed in [0, DIGIT, AT | DOT, DIGIT | PLUS | DOT | DASH, 0x3f] {
            let classes = Classes::new(needed);
            let words = FeatureWords::new(&classes);
            let in_range = |c: u8| classes.lo <= c && c <= classes.hi;
            for fill in [b'a', 0x00, 0x7f, 0x80, 0xff, b'"', b'0'] {
                for c in 0..=255u8 {
                    for at in 0..8 {
                        let mut bytes = [fill; 8];
                        bytes[at] = c;
                        let marks = interesting(u64::from_le_bytes(bytes), words);
                        for (i, &b) in bytes.iter().enumerate() {
                            let want = ends_run(b) || in_range(b);
                            let got = marks >> (i * 8 + 7) & 1 == 1;
                            assert_eq!(got, want, "{bytes:?} byte {i} needed {needed}");
                            // Every byte with a class is in the range.
                            assert!(classes.table[usize::from(b)] == 0 || want);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn escaping() {
        let mut out = String::new();
        push_escaped(&mut out, "a\"b\\c\nd\re\tf\u{1}\u{1f}\u{7f}é");
        assert_eq!(out, "a\\\"b\\\\c\\nd\\re\\tf\\u0001\\u001f\u{7f}é");
    }
}
