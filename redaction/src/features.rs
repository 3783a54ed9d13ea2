//! Features: cheap facts about a text (how many digits, dots, dashes and colons, whether it has
//! an `@` or a `+`) that let a detector skip a text it cannot match without looking for
//! candidates. Counted in the same read that finds where a JSON string ends ([`Classes`]), or
//! by [`Features::of`].

/// A feature class: an ASCII digit.
pub const DIGIT: u8 = 1;
/// `@`.
pub const AT: u8 = 2;
/// `+`.
pub const PLUS: u8 = 4;
/// `.`.
pub const DOT: u8 = 8;
/// `:`.
pub const COLON: u8 = 16;
/// `-`.
pub const DASH: u8 = 32;
/// Every feature class.
const ALL: u8 = DIGIT | AT | PLUS | DOT | COLON | DASH;

/// For each set of classes present in a text ([`Features::present`]), whether some detector
/// could match it: bit `s` is set when one of the detectors' `requires` sets is within `s`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presence(u64);

impl Presence {
    /// From the classes each detector requires to be present (0: none, it may always match).
    pub fn new(requires: impl IntoIterator<Item = u8>) -> Self {
        let mut bits = 0u64;
        for need in requires {
            for present in 0..64u8 {
                if present & need == need & ALL {
                    bits |= 1 << present;
                }
            }
        }
        Presence(bits)
    }

    /// False when no detector can match a text with these features.
    #[inline(always)]
    pub fn allows(self, seen: &Features) -> bool {
        self.0 >> seen.present() & 1 == 1
    }
}

/// Not a feature: in a [`Classes`] table, the bytes that end a plain run inside a JSON string
/// (`"`, `\` and control characters).
pub const STRING_END: u8 = 0x80;

/// The feature class of each byte (0 for most).
const FEATURE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t[b'@' as usize] = AT;
    t[b'+' as usize] = PLUS;
    t[b'.' as usize] = DOT;
    t[b':' as usize] = COLON;
    t[b'-' as usize] = DASH;
    t
};

/// What detectors need to know about a text before they look into it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Features {
    /// ASCII digits.
    pub digits: u32,
    /// `.`s.
    pub dots: u32,
    /// `:`s.
    pub colons: u32,
    /// `-`s.
    pub dashes: u32,
    seen: u8,
}

impl Features {
    /// The features of `text` (every class counted).
    pub fn of(text: &str) -> Self {
        let mut f = Features::default();
        for &b in text.as_bytes() {
            let class = FEATURE[usize::from(b)];
            if class != 0 {
                f.add(class);
            }
        }
        f
    }

    /// Count one byte of feature class `class`.
    #[inline(always)]
    pub fn add(&mut self, class: u8) {
        self.digits += u32::from(class & DIGIT);
        self.dots += u32::from(class & DOT != 0);
        self.colons += u32::from(class & COLON != 0);
        self.dashes += u32::from(class & DASH != 0);
        self.seen |= class;
    }

    /// Count many bytes at once: so many digits, dots, colons and dashes, and the classes
    /// `present` (at least one byte of each).
    #[inline(always)]
    pub fn add_counts(&mut self, digits: u32, dots: u32, colons: u32, dashes: u32, present: u8) {
        self.digits += digits;
        self.dots += dots;
        self.colons += colons;
        self.dashes += dashes;
        self.seen |= present;
    }

    /// True when a byte of class `class` (`AT`, `PLUS`) was counted.
    pub fn has(&self, class: u8) -> bool {
        self.seen & class != 0
    }

    /// The classes seen at least once, as a number below 64 (an index into a [`Presence`]).
    pub fn present(&self) -> u8 {
        self.seen & ALL
    }
}

/// The classes one config's detectors need counted, for a scanner that counts them as it reads.
#[derive(Debug, Clone)]
pub struct Classes {
    /// For each byte: [`STRING_END`], or its feature class when a detector needs it, or 0.
    pub table: [u8; 256],
    /// The classes counted.
    pub needed: u8,
    /// The lowest and highest byte with a feature class (`lo > hi` when there is none).
    pub lo: u8,
    /// See `lo`.
    pub hi: u8,
}

impl Classes {
    /// The table for the feature classes in `needed` (a union of class bits).
    pub fn new(needed: u8) -> Self {
        let mut table = [0u8; 256];
        let (mut lo, mut hi) = (u8::MAX, 0);
        for (byte, slot) in (0..=u8::MAX).zip(table.iter_mut()) {
            let class = FEATURE[usize::from(byte)] & needed;
            if byte < 0x20 || byte == b'"' || byte == b'\\' {
                *slot = STRING_END;
            } else if class != 0 {
                *slot = class;
                lo = lo.min(byte);
                hi = hi.max(byte);
            }
        }
        Classes {
            table,
            needed,
            lo,
            hi,
        }
    }
}
