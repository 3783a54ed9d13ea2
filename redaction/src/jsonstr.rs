//! JSON string literals, the hot part of reading a document: finding where a plain run ends and
//! counting the detectors' features eight bytes at a time (SWAR: plain 64-bit arithmetic and
//! popcount, as fast in WebAssembly), and escaping text back into a literal.

use crate::features::{AT, COLON, Classes, DASH, DIGIT, DOT, Features, PLUS};

/// Bytes that end a plain run inside a string: `"`, `\` and control characters.
pub fn ends_run(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

// Words are read as eight bytes, byte `k` in bits `8k..8k+8`; a "mark" is the high bit of a
// byte. Tests work on the low seven bits of each byte (no byte is 0x80 or more in them, so no
// carry crosses into the next byte) and bytes of 0x80 and above are never marked: each mark is
// exact, byte by byte.

/// The addend that sets the mark of each 7-bit lane that is `n` or more (`n` in 1..=0x80).
const fn addend(n: u8) -> u64 {
    ONES * (0x80 - n as u64)
}

/// Marks of the lanes of `low` that are `addend`'s `n` or more.
#[inline(always)]
fn at_least(low: u64, addend: u64) -> u64 {
    (low + addend) & HIGH
}

/// Marks of the lanes of `low` equal to the ASCII byte `c`.
#[inline(always)]
fn equal(low: u64, c: u8) -> u64 {
    !((low ^ (ONES * u64::from(c))) + LOW7) & HIGH
}

/// The eight bytes at `i` as a word.
#[inline(always)]
pub fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Marks of the bytes that end a plain run in a string: below 0x20, `"`, `\`.
#[inline(always)]
pub fn ends(word: u64) -> u64 {
    let low = word & LOW7;
    let control = !at_least(low, addend(0x20)) & HIGH;
    (control | equal(low, b'"') | equal(low, b'\\')) & !word
}

/// The marks of the bytes below the lowest mark of `marks` (all eight when it has none).
#[inline(always)]
pub fn before_first(marks: u64) -> u64 {
    (marks & marks.wrapping_neg()).wrapping_sub(1) & HIGH
}

/// The feature classes one config counts, as word operations.
#[derive(Clone, Copy)]
pub struct FeatureWords {
    /// Addends for the range of bytes with a counted class (`from == past`: none).
    from: u64,
    past: u64,
    needed: u8,
}

impl FeatureWords {
    /// The classes of `classes`.
    pub fn new(classes: &Classes) -> Self {
        if classes.lo > classes.hi || classes.hi >= 0x80 {
            return FeatureWords {
                from: 0,
                past: 0,
                needed: 0,
            };
        }
        FeatureWords {
            from: addend(classes.lo),
            past: addend(classes.hi + 1),
            needed: classes.needed,
        }
    }

    /// Marks of the bytes in the range of the counted classes (some there have no class).
    #[inline(always)]
    pub fn in_range(self, word: u64) -> u64 {
        let low = word & LOW7;
        (at_least(low, self.from) & !at_least(low, self.past)) & !word
    }

    /// Count the features of the bytes of `word` marked in `within` into `seen`.
    #[inline(always)]
    pub fn count(self, word: u64, within: u64, seen: &mut Features) {
        let low = word & LOW7;
        let within = within & !word;
        // At most one mark per byte: the multiply sums them into the top byte.
        let count = |class: u8, marks: u64| {
            if self.needed & class == 0 {
                0
            } else {
                (((marks & within) >> 7).wrapping_mul(ONES) >> 56) as u32
            }
        };
        let digits = count(
            DIGIT,
            at_least(low, addend(b'0')) & !at_least(low, addend(b'9' + 1)),
        );
        let dots = count(DOT, equal(low, b'.'));
        let colons = count(COLON, equal(low, b':'));
        let dashes = count(DASH, equal(low, b'-'));
        let mut present = 0;
        for (n, class) in [
            (digits, DIGIT),
            (dots, DOT),
            (colons, COLON),
            (dashes, DASH),
        ] {
            if n > 0 {
                present |= class;
            }
        }
        for (c, class) in [(b'@', AT), (b'+', PLUS)] {
            if self.needed & class != 0 && equal(low, c) & within != 0 {
                present |= class;
            }
        }
        seen.add_counts(digits, dots, colons, dashes, present);
    }
}

/// Where the first byte of `b` that needs an escape in a JSON string is, eight bytes at a time.
fn first_to_escape(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(word) = word_at(b, i) {
        let end = ends(word);
        if end != 0 {
            return Some(i + (end.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let tail = b.get(i..)?.iter().position(|&c| ends_run(c))?;
    Some(i + tail)
}

/// Append `text` escaped for a JSON string literal (`"`, `\` and control characters). Most
/// text (masks, the text around a match) needs no escape and is copied whole.
pub fn push_escaped(out: &mut String, text: &str) {
    let Some(first) = first_to_escape(text.as_bytes()) else {
        out.push_str(text);
        return;
    };
    let mut plain = 0;
    for (i, &c) in text.as_bytes().iter().enumerate().skip(first) {
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

    /// Words mixing every byte of interest with fillers that borrow or carry in naive SWAR.
    fn words() -> impl Iterator<Item = [u8; 8]> {
        let fills = [b'a', 0x00, 0x7f, 0x80, 0xff, b'"', b'0', b'9', b'/', b'@'];
        fills.into_iter().flat_map(move |fill| {
            (0..=255u8).flat_map(move |c| {
                (0..8).map(move |at| {
                    let mut bytes = [fill; 8];
                    bytes[at] = c;
                    bytes[(at + 3) % 8] = c.wrapping_add(1);
                    bytes
                })
            })
        })
    }

    #[test]
    fn word_marks_are_exact_per_byte() {
        use crate::features::{AT, DASH, DIGIT, DOT, PLUS};
        for needed in [0, DIGIT, AT | DOT, DIGIT | PLUS | DOT | DASH, 0x3f] {
            let classes = Classes::new(needed);
            let fw = FeatureWords::new(&classes);
            for bytes in words() {
                let word = u64::from_le_bytes(bytes);
                let (end, range) = (ends(word), fw.in_range(word));
                for (i, &b) in bytes.iter().enumerate() {
                    let mark = |m: u64| m >> (i * 8 + 7) & 1 == 1;
                    assert_eq!(mark(end), ends_run(b), "{bytes:?} byte {i}");
                    let in_range = classes.lo <= b && b <= classes.hi;
                    assert_eq!(mark(range), in_range, "{bytes:?} byte {i} needed {needed}");
                    let class = classes.table[usize::from(b)];
                    assert!(class == 0 || class == crate::features::STRING_END || in_range);
                }
            }
        }
    }

    #[test]
    fn word_counts_match_byte_counts() {
        use crate::features::{AT, DASH, DIGIT, DOT, PLUS, STRING_END};
        for needed in [DIGIT, AT | DOT, DIGIT | PLUS | DOT | DASH, 0x3f] {
            let classes = Classes::new(needed);
            let fw = FeatureWords::new(&classes);
            for bytes in words() {
                let word = u64::from_le_bytes(bytes);
                let within = before_first(ends(word));
                let mut by_word = Features::default();
                fw.count(word, fw.in_range(word) & within, &mut by_word);
                let mut by_byte = Features::default();
                for (i, &b) in bytes.iter().enumerate() {
                    let class = classes.table[usize::from(b)];
                    if within >> (i * 8 + 7) & 1 == 1 && class != 0 && class != STRING_END {
                        by_byte.add(class);
                    }
                }
                assert_eq!(format!("{by_word:?}"), format!("{by_byte:?}"), "{bytes:?}");
            }
        }
    }

    #[test]
    fn escaping() {
        let mut out = String::new();
        push_escaped(&mut out, "a\"b\\c\nd\re\tf\u{1}\u{1f}\u{7f}é");
        assert_eq!(out, "a\\\"b\\\\c\\nd\\re\\tf\\u0001\\u001f\u{7f}é");
    }

    #[test]
    fn escaping_finds_the_first_escape_wherever_it_is() {
        // Each length around a word, with the byte to escape at each place, and none at all.
        for len in 0..20 {
            let plain: String = (0..len).map(|i| char::from(b'a' + i as u8)).collect();
            let mut out = String::new();
            push_escaped(&mut out, &plain);
            assert_eq!(out, plain);
            for at in 0..len {
                let mut text = plain.clone().into_bytes();
                text[at] = b'"';
                let text = String::from_utf8(text).expect("ASCII");
                let mut out = String::new();
                push_escaped(&mut out, &text);
                assert_eq!(out, text.replace('"', "\\\""), "{text}");
            }
        }
    }
}
