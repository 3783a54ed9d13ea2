//! Hand-written finders for the built-in detectors, and the checks that keep their false
//! positives down. Each `find_*` returns, from a byte offset, the match that the detector's
//! pattern (quoted above it) finds with the `regex` crate's leftmost-first, greedy semantics:
//! same start, same end. They are byte loops with no allocation; the patterns only use ASCII
//! classes, so a byte that is not ASCII never matches and offsets stay on character boundaries.
//! E-mail is the exception (`\w`, `\p{L}` are Unicode): [`find_email_ascii`] is only used on
//! ASCII text. `crate::equivalence` checks every finder against its regex on generated texts.

/// A finder: the next match at or after an offset, as (start, end).
pub type Finder = fn(&[u8], usize) -> Option<(usize, usize)>;

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

/// Length of the run of `class` bytes at `from`, counting at most `cap`.
fn run(b: &[u8], from: usize, cap: usize, class: impl Fn(u8) -> bool) -> usize {
    b.get(from..).map_or(0, |rest| {
        rest.iter().take(cap).take_while(|&&c| class(c)).count()
    })
}

/// True when the `n` bytes at `at` are ASCII digits.
fn digits_at(b: &[u8], at: usize, n: usize) -> bool {
    b.get(at..at.saturating_add(n))
        .is_some_and(|w| w.iter().all(u8::is_ascii_digit))
}

/// The first start at or after `from` where `at` matches, with its end.
fn leftmost(
    b: &[u8],
    from: usize,
    first: impl Fn(u8) -> bool,
    at: impl Fn(&[u8], usize) -> Option<usize>,
) -> Option<(usize, usize)> {
    let rest = b.get(from..)?;
    rest.iter()
        .enumerate()
        .filter(|&(_, &c)| first(c))
        .find_map(|(i, _)| at(b, from + i).map(|end| (from + i, end)))
}

/// True when the byte before `at` is an ASCII letter or digit.
pub fn alnum_before(b: &[u8], at: usize) -> bool {
    at.checked_sub(1)
        .and_then(|i| b.get(i))
        .is_some_and(u8::is_ascii_alphanumeric)
}

/// True when the number before `end` goes on: a digit, or `.`/`-` and a digit.
pub fn continues_number(b: &[u8], end: usize) -> bool {
    match b.get(end) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.' | b'-') => b.get(end + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

fn email_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'%' | b'+' | b'-')
}

fn email_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// `[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.\p{L}{2,}` on ASCII text. The local part is the whole run
/// before an `@`; the domain is labels joined by single dots, and the match ends after the
/// letters that start the last label (not the first) beginning with two letters.
pub fn find_email_ascii(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut p = from;
    loop {
        let at = p + b.get(p..)?.iter().position(|&c| c == b'@')?;
        let mut start = at;
        while start > from && b.get(start - 1).is_some_and(|&c| email_local(c)) {
            start -= 1;
        }
        if start < at
            && let Some(end) = email_domain_end(b, at + 1)
        {
            return Some((start, end));
        }
        p = at + 1;
    }
}

fn email_domain_end(b: &[u8], from: usize) -> Option<usize> {
    let first = run(b, from, usize::MAX, email_domain);
    if first == 0 {
        return None;
    }
    let mut i = from + first;
    let mut end = None;
    while b.get(i) == Some(&b'.') {
        let label = i + 1;
        let len = run(b, label, usize::MAX, email_domain);
        if len == 0 {
            break;
        }
        let letters = run(b, label, len, |c| c.is_ascii_alphabetic());
        if letters >= 2 {
            end = Some(label + letters);
        }
        i = label + len;
    }
    end
}

/// `[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}`.
pub fn find_iban(b: &[u8], from: usize) -> Option<(usize, usize)> {
    leftmost(b, from, |c| c.is_ascii_uppercase(), iban_at)
}

fn iban_char(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn iban_at(b: &[u8], s: usize) -> Option<usize> {
    let head = b.get(s..s + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && is_digit(head[2])
        && is_digit(head[3]))
    {
        return None;
    }
    let mut i = s + 4;
    let mut n = 0;
    while n < 32 {
        if b.get(i).is_some_and(|&c| iban_char(c)) {
            i += 1;
        } else if b.get(i) == Some(&b' ') && b.get(i + 1).is_some_and(|&c| iban_char(c)) {
            i += 2;
        } else {
            break;
        }
        n += 1;
    }
    (n >= 11).then_some(i)
}

/// The longest IBAN (15–34 characters, single spaces allowed between them) at the start of the
/// candidate `b[start..end]` that ends at a word boundary and passes mod-97: its end.
pub fn iban_prefix(b: &[u8], start: usize, end: usize) -> Option<usize> {
    // The candidate has at most 36 characters besides spaces: each, and the offset after it.
    let mut chars = [0u8; 36];
    let mut after = [0usize; 36];
    let mut n = 0;
    for (i, &c) in b.get(start..end)?.iter().enumerate() {
        if c != b' ' && n < chars.len() {
            chars[n] = c;
            after[n] = start + i + 1;
            n += 1;
        }
    }
    (15..=n.min(34)).rev().find_map(|len| {
        let end = after[len - 1];
        let boundary = !b.get(end).is_some_and(u8::is_ascii_alphanumeric);
        (boundary && iban_checksum_ok(&chars[..len])).then_some(end)
    })
}

/// ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 must be 1.
pub fn iban_checksum_ok(iban: &[u8]) -> bool {
    let (head, tail) = iban.split_at(4.min(iban.len()));
    let mut rem = 0u32;
    for &c in tail.iter().chain(head) {
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

/// `[0-9]{3}-[0-9]{2}-[0-9]{4}`.
pub fn find_ssn(b: &[u8], from: usize) -> Option<(usize, usize)> {
    leftmost(b, from, is_digit, |b, s| {
        let ok = digits_at(b, s, 3)
            && b.get(s + 3) == Some(&b'-')
            && digits_at(b, s + 4, 2)
            && b.get(s + 6) == Some(&b'-')
            && digits_at(b, s + 7, 4);
        ok.then_some(s + 11)
    })
}

/// SSNs never issued: area 000, 666 or 900–999, group 00, serial 0000 (`ssn` is `ddd-dd-dddd`).
pub fn ssn_issuable(ssn: &[u8]) -> bool {
    let (Some(area), Some(group), Some(serial)) = (ssn.get(0..3), ssn.get(4..6), ssn.get(7..11))
    else {
        return false;
    };
    area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000"
}

/// `\+[0-9][0-9 ().-]{5,24}[0-9]`: the greedy middle gives back characters until a digit
/// follows it.
pub fn find_international_phone(b: &[u8], from: usize) -> Option<(usize, usize)> {
    leftmost(
        b,
        from,
        |c| c == b'+',
        |b, s| {
            if !b.get(s + 1).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            let middle = s + 2;
            let k = run(b, middle, 24, |c| {
                is_digit(c) || matches!(c, b' ' | b'(' | b')' | b'.' | b'-')
            });
            (5..=k)
                .rev()
                .find(|&m| b.get(middle + m).is_some_and(u8::is_ascii_digit))
                .map(|m| middle + m + 1)
        },
    )
}

/// Where an international number candidate really ends: trailing groups are dropped until it
/// has at most 15 digits; `None` when fewer than 8 are left or it runs into more digits.
pub fn phone_end(b: &[u8], start: usize, end: usize) -> Option<usize> {
    if alnum_before(b, start) {
        return None;
    }
    let mut end = end;
    loop {
        let number = b.get(start..end)?;
        let count = number.iter().filter(|c| c.is_ascii_digit()).count();
        if count <= 15 {
            if count < 8 || continues_number(b, end) {
                return None;
            }
            return Some(end);
        }
        // Cut at the last separator and drop the separators before it.
        let cut = number.iter().rposition(|c| !c.is_ascii_digit())?;
        end = start + cut;
        while end > start && !b.get(end - 1).is_some_and(u8::is_ascii_digit) {
            end -= 1;
        }
    }
}

/// `(?:\([0-9]{3}\) ?|[0-9]{3}[.-])[0-9]{3}[.-][0-9]{4}`.
pub fn find_national_phone(b: &[u8], from: usize) -> Option<(usize, usize)> {
    leftmost(
        b,
        from,
        |c| c == b'(' || is_digit(c),
        |b, s| {
            let mut i = if b.get(s) == Some(&b'(') {
                if !(digits_at(b, s + 1, 3) && b.get(s + 4) == Some(&b')')) {
                    return None;
                }
                // ` ?` is greedy, and without the space the next digit would be missing.
                if b.get(s + 5) == Some(&b' ') {
                    s + 6
                } else {
                    s + 5
                }
            } else {
                if !(digits_at(b, s, 3) && matches!(b.get(s + 3), Some(b'.' | b'-'))) {
                    return None;
                }
                s + 4
            };
            if !(digits_at(b, i, 3) && matches!(b.get(i + 3), Some(b'.' | b'-'))) {
                return None;
            }
            i += 4;
            digits_at(b, i, 4).then_some(i + 4)
        },
    )
}

/// `[0-9]{1,3}(?:\.[0-9]{1,3}){3}`: each of the first three numbers must be followed by its dot
/// (so it has 1–3 digits), the last takes up to three digits.
pub fn find_ipv4(b: &[u8], from: usize) -> Option<(usize, usize)> {
    leftmost(b, from, is_digit, |b, s| {
        let mut i = s;
        for part in 0..4 {
            if part > 0 {
                if b.get(i) != Some(&b'.') {
                    return None;
                }
                i += 1;
            }
            let n = run(b, i, 4, is_digit);
            if n == 0 || (part < 3 && n > 3) {
                return None;
            }
            i += n.min(3);
        }
        Some(i)
    })
}

fn hex_or_dot(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b'.'
}

/// `[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*`. A start inside a run that fails fails for the
/// whole run, which is skipped.
pub fn find_ipv6(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut s = from;
    while let Some(&c) = b.get(s) {
        if !(hex_or_dot(c) || c == b':') {
            s += 1;
            continue;
        }
        let first = s + run(b, s, usize::MAX, hex_or_dot);
        if b.get(first) != Some(&b':') {
            s = first + 1;
            continue;
        }
        let second = first + 1 + run(b, first + 1, usize::MAX, hex_or_dot);
        if b.get(second) != Some(&b':') {
            s = first + 1;
            continue;
        }
        let end = second + 1 + run(b, second + 1, usize::MAX, |c| hex_or_dot(c) || c == b':');
        return Some((s, end));
    }
    None
}

/// Card numbers: runs of digit groups joined by single spaces or dashes; within a run, the
/// leftmost, longest span of whole groups, joined by one kind of separator, with 13–19 digits
/// that passes the Luhn check. Calls `push(start, end)` for each.
pub fn find_cards(b: &[u8], mut push: impl FnMut(usize, usize)) {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut total = 0;
        loop {
            let group = run(b, i, usize::MAX, is_digit);
            total += group;
            i += group;
            let joined = matches!(b.get(i), Some(b' ' | b'-'))
                && b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !joined {
                break;
            }
            i += 1;
        }
        if total >= 13 {
            cards_in_run(b, start, i, &mut push);
        }
    }
}

/// The cards in the run of groups `b[start..end]`.
fn cards_in_run(b: &[u8], start: usize, end: usize, push: &mut impl FnMut(usize, usize)) {
    let mut a = start;
    while a < end {
        let mut digits = [0u8; 19];
        let mut n = 0;
        let mut best = None;
        let mut group = a;
        let mut separator = None;
        for z in 0.. {
            let group_end = group + run(b, group, usize::MAX, is_digit);
            if z > 0 {
                // One card is written with one kind of separator.
                let sep = b.get(group - 1).copied();
                if z == 1 {
                    separator = sep;
                } else if sep != separator {
                    break;
                }
            }
            let Some(more) = b.get(group..group_end).filter(|g| n + g.len() <= 19) else {
                break;
            };
            digits[n..n + more.len()].copy_from_slice(more);
            n += more.len();
            if n >= 13 && luhn(&digits[..n]) {
                best = Some(group_end);
            }
            if group_end >= end {
                break;
            }
            group = group_end + 1;
        }
        a = match best {
            Some(card_end) => {
                push(a, card_end);
                card_end + 1
            }
            None => a + run(b, a, usize::MAX, is_digit) + 1,
        };
    }
}

/// The Luhn checksum over ASCII digits.
pub fn luhn(number: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, c) in number.iter().rev().enumerate() {
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
