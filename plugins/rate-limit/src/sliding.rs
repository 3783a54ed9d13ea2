//! Sliding-window arithmetic (pure; the plugin does the counting with `state.incr`).
//!
//! Time is cut into fixed windows of one period. A request is counted in its window; the
//! estimate for "the last period" is `previous × (time left in this window / period) + current`,
//! which assumes the previous window's requests were spread evenly. A request is admitted when
//! the estimate, counting it, stays within the limit: the current window may hold at most
//! `limit − ⌈previous × left / period⌉` requests. So no fixed window ever holds more than
//! `limit`, and with evenly spread traffic a sliding period holds about `limit`; traffic bunched
//! just before a window boundary can let up to nearly `2 × limit` through within one period in
//! the worst case (that is why the token bucket is the default).

/// Where `now` falls: the window's index and the milliseconds elapsed in it.
pub fn window(now_ms: u64, period_ms: u64) -> (u64, u64) {
    let period = period_ms.max(1);
    (now_ms / period, now_ms % period)
}

/// How many requests the current window may hold, given the previous window's count and the
/// time elapsed in the current one.
pub fn capacity(limit: u64, previous: u64, elapsed_ms: u64, period_ms: u64) -> u64 {
    let period = u128::from(period_ms.max(1));
    let left = period.saturating_sub(u128::from(elapsed_ms));
    // Rounded up: never admit more than the estimate allows.
    let carried = (u128::from(previous) * left).div_ceil(period);
    u128::from(limit)
        .saturating_sub(carried)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// Milliseconds until one more request would be admitted, when the current window holds
/// `current` requests (not counting the refused one) and nothing else arrives.
pub fn retry_after_ms(
    limit: u64,
    previous: u64,
    current: u64,
    elapsed_ms: u64,
    period_ms: u64,
) -> u64 {
    let period = period_ms.max(1);
    let elapsed = elapsed_ms.min(period);
    if let Some(at) = admits_from(limit, previous, current, period)
        && at < period
    {
        return at.saturating_sub(elapsed);
    }
    // Not in this window: in the next one, this window's count becomes the previous one.
    let next = admits_from(limit, current, 0, period).unwrap_or(period);
    (period - elapsed).saturating_add(next)
}

/// The earliest elapsed time in a window at which a window holding `current` requests admits
/// one more, given `previous`; `None` when it never does within the window.
fn admits_from(limit: u64, previous: u64, current: u64, period: u64) -> Option<u64> {
    // Room for the carried-over share of `previous` once this request is counted.
    let room = limit.checked_sub(current)?.checked_sub(1)?;
    if previous == 0 {
        return Some(0);
    }
    // ⌈previous × (period − e) / period⌉ ≤ room  ⟺  e ≥ period − ⌊room × period / previous⌋.
    let slack = u128::from(room) * u128::from(period) / u128::from(previous);
    let slack = u64::try_from(slack).unwrap_or(u64::MAX);
    Some(period.saturating_sub(slack))
}

/// Milliseconds until the full limit is available again (the estimate is back to 0).
pub fn reset_ms(previous: u64, current: u64, elapsed_ms: u64, period_ms: u64) -> u64 {
    let left = period_ms.saturating_sub(elapsed_ms);
    match (previous, current) {
        (_, c) if c > 0 => left.saturating_add(period_ms),
        (p, _) if p > 0 => left,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(window(0, 1000), (0, 0));
        assert_eq!(window(2_500, 1000), (2, 500));
        assert_eq!(window(5, 0), (5, 0));
    }

    #[test]
    fn capacity_weighs_the_previous_window() {
        assert_eq!(capacity(10, 0, 0, 1000), 10);
        assert_eq!(capacity(10, 10, 0, 1000), 0);
        assert_eq!(capacity(10, 10, 500, 1000), 5);
        assert_eq!(capacity(10, 10, 999, 1000), 9); // 0.01 carried, rounded up
        assert_eq!(capacity(10, 3, 500, 1000), 8); // 1.5 carried → 2
        assert_eq!(capacity(10, 50, 100, 1000), 0);
        assert_eq!(capacity(u64::MAX, u64::MAX, 0, u64::MAX), 0);
    }

    #[test]
    fn retry_after_in_this_window() {
        // previous 10, current 5, limit 10, half way: capacity 5 → full. One more fits once the
        // carried share is ≤ 4: 10 × left / 1000 ≤ 4 → left ≤ 400 → elapsed ≥ 600.
        assert_eq!(retry_after_ms(10, 10, 5, 500, 1000), 100);
        assert_eq!(capacity(10, 10, 600, 1000), 6);
        assert_eq!(capacity(10, 10, 599, 1000), 5);
        // No previous traffic and room left: now.
        assert_eq!(retry_after_ms(10, 0, 3, 200, 1000), 0);
    }

    #[test]
    fn retry_after_in_the_next_window() {
        // The current window is full: wait for the next one, where 10 carried must drop to 9.
        // 10 × left / 1000 ≤ 9 → elapsed ≥ 100 in the next window.
        assert_eq!(retry_after_ms(10, 0, 10, 300, 1000), 700 + 100);
        // A limit of 1 with one request in this window: the next window must be fully past it.
        assert_eq!(retry_after_ms(1, 0, 1, 0, 1000), 1000 + 1000);
    }

    #[test]
    fn reset() {
        assert_eq!(reset_ms(0, 0, 300, 1000), 0);
        assert_eq!(reset_ms(4, 0, 300, 1000), 700);
        assert_eq!(reset_ms(4, 1, 300, 1000), 1700);
    }
}
