//! UTC calendar periods from the host's wall clock (milliseconds since the Unix epoch): where a
//! period starts and ends, a compact label for state keys and RFC 3339 text for clients.
//! Plugins get no time zone data and need none: quotas count in UTC calendar periods.

use tollgate_sdk::text::push_padded;

const MS_PER_MINUTE: u64 = 60_000;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;

/// How long a quota counts before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// From `hh:mm:00` to the next minute.
    Minute,
    /// From `hh:00:00` to the next hour.
    Hour,
    /// From midnight UTC to the next midnight.
    Day,
    /// From the first of the month, midnight UTC, to the first of the next month.
    Month,
}

impl Period {
    /// Parse the config spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "minute" => Some(Period::Minute),
            "hour" => Some(Period::Hour),
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    /// The config spelling, also used in state keys.
    pub fn name(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The period containing `now_ms`.
    pub fn window(self, now_ms: u64) -> Window {
        let fixed = |len: u64| {
            let start = now_ms - now_ms % len;
            (start, start + len)
        };
        let (start_ms, end_ms) = match self {
            Period::Minute => fixed(MS_PER_MINUTE),
            Period::Hour => fixed(MS_PER_HOUR),
            Period::Day => fixed(MS_PER_DAY),
            Period::Month => {
                let (y, m, _) = civil_from_days(now_ms / MS_PER_DAY);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (
                    days_from_civil(y, m, 1) * MS_PER_DAY,
                    days_from_civil(ny, nm, 1) * MS_PER_DAY,
                )
            }
        };
        Window {
            period: self,
            start_ms,
            end_ms,
        }
    }
}

/// One concrete period: `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The kind of period.
    pub period: Period,
    /// First millisecond of the period.
    pub start_ms: u64,
    /// First millisecond of the next period.
    pub end_ms: u64,
}

impl Window {
    /// A compact label of the period's start, as long as the period needs: `YYYYMM` (month),
    /// `YYYYMMDD` (day), `YYYYMMDDHH` (hour), `YYYYMMDDHHMM` (minute).
    pub fn label(&self) -> String {
        let (y, mo, d, h, mi, _) = fields(self.start_ms);
        let parts: &[u64] = match self.period {
            Period::Month => &[mo],
            Period::Day => &[mo, d],
            Period::Hour => &[mo, d, h],
            Period::Minute => &[mo, d, h, mi],
        };
        let mut out = String::with_capacity(12);
        push_padded(&mut out, y, 4);
        for &part in parts {
            push_padded(&mut out, part, 2);
        }
        out
    }
}

/// `2026-11-26T00:00:00Z`.
pub fn rfc3339(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = fields(ms);
    let mut out = String::with_capacity(20);
    push_padded(&mut out, y, 4);
    for (separator, part) in [('-', mo), ('-', d), ('T', h), (':', mi), (':', s)] {
        out.push(separator);
        push_padded(&mut out, part, 2);
    }
    out.push('Z');
    out
}

/// (year, month, day, hour, minute, second) in UTC.
fn fields(ms: u64) -> (u64, u64, u64, u64, u64, u64) {
    let (y, mo, d) = civil_from_days(ms / MS_PER_DAY);
    let in_day = (ms % MS_PER_DAY) / 1000;
    (y, mo, d, in_day / 3600, in_day % 3600 / 60, in_day % 60)
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian. Howard
/// Hinnant's `civil_from_days`, restricted to dates from 1970 on (the clock cannot go earlier).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// (year ≥ 1970, month, day) → days since 1970-01-01; the inverse of [`civil_from_days`].
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-26T13:45:30.250Z
    const NOW: u64 = 1_795_700_730_250;

    #[test]
    fn formats_and_labels() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(NOW), "2026-11-26T13:45:30Z");
        assert_eq!(Period::Minute.window(NOW).label(), "202611261345");
        assert_eq!(Period::Hour.window(NOW).label(), "2026112613");
        assert_eq!(Period::Day.window(NOW).label(), "20261126");
        assert_eq!(Period::Month.window(NOW).label(), "202611");
    }

    #[test]
    fn windows_contain_now_and_end_at_the_next_boundary() {
        let day = Period::Day.window(NOW);
        assert_eq!(rfc3339(day.start_ms), "2026-11-26T00:00:00Z");
        assert_eq!(rfc3339(day.end_ms), "2026-11-27T00:00:00Z");
        let month = Period::Month.window(NOW);
        assert_eq!(rfc3339(month.start_ms), "2026-11-01T00:00:00Z");
        assert_eq!(rfc3339(month.end_ms), "2026-12-01T00:00:00Z");
        let minute = Period::Minute.window(NOW);
        assert_eq!(rfc3339(minute.end_ms), "2026-11-26T13:46:00Z");
        for w in [day, month, minute, Period::Hour.window(NOW)] {
            assert!(w.start_ms <= NOW && NOW < w.end_ms, "{w:?}");
        }
    }

    #[test]
    fn months_roll_over_years_and_leap_days() {
        // 2026-12-31T23:59:59.999Z
        let dec = Period::Month.window(1_798_761_599_999);
        assert_eq!(rfc3339(dec.start_ms), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(dec.end_ms), "2027-01-01T00:00:00Z");
        // 2028-02-29T12:00:00Z (leap year)
        let feb = Period::Month.window(1_835_438_400_000);
        assert_eq!(rfc3339(feb.start_ms), "2028-02-01T00:00:00Z");
        assert_eq!(rfc3339(feb.end_ms), "2028-03-01T00:00:00Z");
        assert_eq!(rfc3339(1_835_438_400_000), "2028-02-29T12:00:00Z");
    }

    #[test]
    fn civil_round_trips() {
        for days in (0..200_000).step_by(17) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
