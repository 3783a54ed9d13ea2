//! Features: cheap facts about a text (how many digits, dots, dashes and colons, whether it has
//! an `@` or a `+`) that let a detector skip a text it cannot match without looking for
//! candidates ([`Features::of`]).

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

    /// True when a byte of class `class` (`AT`, `PLUS`) was counted.
    pub fn has(&self, class: u8) -> bool {
        self.seen & class != 0
    }
}
