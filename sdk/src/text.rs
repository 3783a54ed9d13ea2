//! Small text builders for a plugin's per-request path: numbers and keys appended to one
//! buffer, without the formatting machinery (`format!` costs a virtual call per piece and its
//! own allocations, which shows in a plugin called on every request).

/// Append `n` in decimal, left-padded with zeros to at least `width` digits.
///
/// ```
/// let mut s = String::from("t=");
/// tollgate_sdk::text::push_padded(&mut s, 7, 2);
/// tollgate_sdk::text::push_padded(&mut s, 2026, 2);
/// assert_eq!(s, "t=072026");
/// ```
pub fn push_padded(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (digits.len() - start)..width {
        out.push('0');
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// Append `n` in decimal.
pub fn push_u64(out: &mut String, n: u64) {
    push_padded(out, n, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_padded_to_width_and_never_cut() {
        let text = |n: u64, width: usize| {
            let mut s = String::new();
            push_padded(&mut s, n, width);
            s
        };
        assert_eq!(text(0, 0), "0");
        assert_eq!(text(0, 2), "00");
        assert_eq!(text(5, 4), "0005");
        assert_eq!(text(12345, 2), "12345");
        assert_eq!(text(u64::MAX, 0), u64::MAX.to_string());
        let mut s = String::new();
        push_u64(&mut s, 1_000_000);
        assert_eq!(s, "1000000");
    }
}
