//! Latency histograms with fixed bucket bounds, shared by the gateway (which counts each
//! finished request into one) and the control plane (which adds them up and reads p50 and p99
//! back out). Bucket `i` holds durations up to `100 µs × 1.2^i`; the last one holds everything
//! longer. A quantile is read as the geometric middle of its bucket, so it is within ~10 % of
//! the true value (a bucket spans a factor of 1.2, half of that either side is ≤ 9.6 %).
//!
//! On the wire and in the database a histogram is sparse text: `index:count` pairs joined by
//! commas, buckets with no requests left out (`"12:3,14:1"`).

/// Number of buckets (100 µs up to ~18 minutes, the last one open-ended).
pub const BUCKETS: usize = 80;
/// The first bucket's upper bound, in microseconds.
const FIRST_US: f64 = 100.0;
/// Each bucket's bound is this many times the previous one's.
const GROWTH: f64 = 1.2;

/// The bucket of a duration in microseconds.
pub fn bucket(micros: u64) -> usize {
    if micros <= 100 {
        return 0;
    }
    let ratio = micros as f64 / FIRST_US;
    let index = (ratio.ln() / GROWTH.ln()).ceil();
    let index = index.max(0.0) as usize;
    index.min(BUCKETS - 1)
}

/// The value (milliseconds) a quantile in bucket `index` is read as: its geometric middle.
fn middle_ms(index: usize) -> f64 {
    let exponent = index as f64 - 0.5;
    if index == 0 {
        return FIRST_US / 2.0 / 1000.0;
    }
    FIRST_US * GROWTH.powf(exponent) / 1000.0
}

/// The `q` quantile (0..=1) of a histogram, in milliseconds; `None` when it counts nothing.
pub fn quantile_ms(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for (index, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(middle_ms(index));
        }
    }
    Some(middle_ms(counts.len().saturating_sub(1)))
}

/// A histogram as sparse text (`index:count,...`).
pub fn encode(counts: &[u64]) -> String {
    let mut text = String::new();
    for (index, count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        if !text.is_empty() {
            text.push(',');
        }
        text.push_str(&format!("{index}:{count}"));
    }
    text
}

/// Add sparse text into `counts` (`BUCKETS` long); an error says what did not parse.
pub fn add_text(counts: &mut [u64; BUCKETS], text: &str) -> Result<(), String> {
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (index, count) = pair
            .split_once(':')
            .ok_or_else(|| format!("latency bucket `{pair}` is not index:count"))?;
        let index: usize = index
            .parse()
            .map_err(|_| format!("latency bucket index `{index}` is not a number"))?;
        let count: u64 = count
            .parse()
            .map_err(|_| format!("latency count `{count}` is not a number"))?;
        let slot = counts
            .get_mut(index)
            .ok_or_else(|| format!("latency bucket {index} is past the last ({BUCKETS})"))?;
        *slot = slot.saturating_add(count);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_ten_percent() {
        for micros in [150u64, 900, 12_000, 250_000, 3_000_000] {
            let mut counts = [0u64; BUCKETS];
            counts[bucket(micros)] = 1;
            let read = quantile_ms(&counts, 0.5).unwrap_or(0.0);
            let truth = micros as f64 / 1000.0;
            assert!(
                (read - truth).abs() / truth <= 0.10,
                "{micros} µs read as {read} ms"
            );
        }
    }

    #[test]
    fn p99_sees_the_slow_tail_and_text_round_trips() {
        let mut counts = [0u64; BUCKETS];
        counts[bucket(1_000)] = 98;
        counts[bucket(500_000)] = 2;
        let p50 = quantile_ms(&counts, 0.5).unwrap_or(0.0);
        let p99 = quantile_ms(&counts, 0.99).unwrap_or(0.0);
        assert!((0.9..1.1).contains(&p50), "p50 {p50}");
        assert!((450.0..550.0).contains(&p99), "p99 {p99}");
        let mut back = [0u64; BUCKETS];
        assert_eq!(add_text(&mut back, &encode(&counts)), Ok(()));
        assert_eq!(back, counts);
        assert!(add_text(&mut back, "80:1").is_err());
        assert!(add_text(&mut back, "x").is_err());
        assert_eq!(quantile_ms(&[0; BUCKETS], 0.5), None);
    }
}
