//! The hourly bucket label, `YYYYMMDDHH` in UTC, from the host's wall clock.

use tollgate_sdk::text::push_padded;

const MS_PER_HOUR: u64 = 3_600_000;

/// The label of the hour containing `ms` (milliseconds since the Unix epoch).
#[cfg(test)]
pub fn label(ms: u64) -> String {
    let mut out = String::with_capacity(10);
    push_label(&mut out, ms);
    out
}

/// The label of the hour containing `ms` (`YYYYMMDDHH`), appended to `out`.
pub fn push_label(out: &mut String, ms: u64) {
    let hours = ms / MS_PER_HOUR;
    let (y, m, d) = civil_from_days(hours / 24);
    push_padded(out, y, 4);
    for part in [m, d, hours % 24] {
        push_padded(out, part, 2);
    }
}

/// First millisecond after the hour containing `ms`.
pub fn end_of_hour(ms: u64) -> u64 {
    (ms / MS_PER_HOUR + 1) * MS_PER_HOUR
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`, for dates from 1970 on).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label(0), "1970010100");
        // 2026-11-26T13:45:30.250Z
        assert_eq!(label(1_795_700_730_250), "2026112613");
        assert_eq!(end_of_hour(1_795_700_730_250), 1_795_701_600_000);
        // 2028-02-29T23:59:59.999Z
        assert_eq!(label(1_835_481_599_999), "2028022923");
    }
}
