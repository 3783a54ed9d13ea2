//! Histograms with fixed buckets, counted as each sample is recorded.
//!
//! The Prometheus exporter's own histograms keep every sample in a lock-free list until upkeep
//! or a render folds the list into buckets. That list can lose a sample: a writer that loaded
//! the list's last block just before a fold emptied it writes into a block the fold has already
//! read (`metrics-util` 0.20 `AtomicBucket`; the CI run of 2026-12-05 counted 4,399,999 of
//! 4,400,000 samples). It also needs a thread to fold, and costs an epoch pin per sample.
//!
//! Here a sample is one atomic add to its bucket and one to the sum, at once, so nothing is
//! kept and nothing can be missed: a series takes 160 bytes however many samples it counts.
//! The text is rendered with the exporter's own formatting helpers, so `/metrics` reads the
//! same as before (`_bucket` lines with cumulative counts and `le`, `_sum`, `_count`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{HistogramFn, Key};
use metrics_exporter_prometheus::formatting::{key_to_parts, write_metric_line, write_type_line};

/// Upper bounds of the buckets in seconds, for every histogram: from 50 µs (a warm plugin
/// call) to 30 s (a slow upstream). Samples above the last bound count in `+Inf` only.
pub const BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One series: how many samples fell in each bucket (not cumulative; the last is above every
/// bound) and the sum of the samples as `f64` bits.
#[derive(Default)]
pub struct Series {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_bits: AtomicU64,
}

impl HistogramFn for Series {
    /// Count `value` in the first bucket whose bound is at least `value`. A NaN is not an
    /// observation and is dropped; an infinity counts in its end bucket but not in the sum, so
    /// one bad sample from a plugin cannot make the series' sum useless for good.
    fn record(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let bucket = BUCKETS.partition_point(|bound| *bound < value);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if value.is_finite() {
            // The closure always returns `Some`, so the update cannot fail.
            let _ = self
                .sum_bits
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                    Some((f64::from_bits(bits) + value).to_bits())
                });
        }
    }
}

impl Series {
    /// Cumulative counts per bound (the last is `+Inf`, which is also the total) and the sum.
    fn snapshot(&self) -> ([u64; BUCKETS.len() + 1], f64) {
        let mut cumulative = [0; BUCKETS.len() + 1];
        let mut total = 0u64;
        for (slot, count) in cumulative.iter_mut().zip(&self.counts) {
            total = total.saturating_add(count.load(Ordering::Relaxed));
            *slot = total;
        }
        (
            cumulative,
            f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
        )
    }
}

/// The series of one metric name, by their rendered labels.
type SeriesByName = BTreeMap<String, Vec<(Vec<String>, Arc<Series>)>>;

/// Every histogram series of the process, by metric key (name and labels).
#[derive(Default)]
pub struct Histograms {
    series: RwLock<HashMap<Key, Arc<Series>>>,
}

impl Histograms {
    /// The series of `key`, made on first use.
    pub fn series(&self, key: &Key) -> Arc<Series> {
        let known = self.series.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = known.get(key) {
            return Arc::clone(series);
        }
        drop(known);
        let mut all = self.series.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(all.entry(key.clone()).or_default())
    }

    /// Append every series in the Prometheus text format, one `# TYPE` line per metric name.
    pub fn render_into(&self, output: &mut String) {
        let mut by_name = SeriesByName::new();
        {
            let all = self.series.read().unwrap_or_else(PoisonError::into_inner);
            for (key, series) in all.iter() {
                let (name, labels) = key_to_parts(key, None);
                by_name
                    .entry(name)
                    .or_default()
                    .push((labels, Arc::clone(series)));
            }
        }
        for (name, mut series) in by_name {
            series.sort_by(|a, b| a.0.cmp(&b.0));
            write_type_line(output, &name, "histogram");
            for (labels, series) in series {
                write_series(output, &name, &labels, &series);
            }
            output.push('\n');
        }
    }
}

/// The `_bucket`, `_sum` and `_count` lines of one series.
fn write_series(output: &mut String, name: &str, labels: &[String], series: &Series) {
    let (cumulative, sum) = series.snapshot();
    let (bounded, [total]) = cumulative.split_at(BUCKETS.len()) else {
        return;
    };
    let total = *total;
    for (bound, count) in BUCKETS.iter().zip(bounded) {
        write_metric_line(
            output,
            name,
            Some("bucket"),
            labels,
            Some(("le", bound)),
            count,
            None,
        );
    }
    write_metric_line(
        output,
        name,
        Some("bucket"),
        labels,
        Some(("le", "+Inf")),
        total,
        None,
    );
    write_metric_line::<&str, f64>(output, name, Some("sum"), labels, None, sum, None);
    write_metric_line::<&str, u64>(output, name, Some("count"), labels, None, total, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(histograms: &Histograms) -> String {
        let mut text = String::new();
        histograms.render_into(&mut text);
        text
    }

    #[test]
    fn samples_count_in_cumulative_buckets_with_sum_and_count() {
        let histograms = Histograms::default();
        let key = Key::from_parts("took_seconds", vec![metrics::Label::new("route", "a\"b")]);
        let series = histograms.series(&key);
        for value in [0.000_05, 0.0003, 0.0003, 45.0, f64::INFINITY, f64::NAN] {
            series.record(value);
        }
        let text = rendered(&histograms);
        assert!(
            text.starts_with("# TYPE took_seconds histogram\n"),
            "{text}"
        );
        assert!(text.contains("took_seconds_bucket{route=\"a\\\"b\",le=\"0.00005\"} 1\n"));
        assert!(text.contains("took_seconds_bucket{route=\"a\\\"b\",le=\"0.00025\"} 1\n"));
        assert!(text.contains("took_seconds_bucket{route=\"a\\\"b\",le=\"0.0005\"} 3\n"));
        assert!(text.contains("took_seconds_bucket{route=\"a\\\"b\",le=\"30\"} 3\n"));
        assert!(text.contains("took_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 5\n"));
        assert!(
            text.contains("took_seconds_sum{route=\"a\\\"b\"} 45.00065\n"),
            "{text}"
        );
        assert!(text.contains("took_seconds_count{route=\"a\\\"b\"} 5\n"));
    }

    #[test]
    fn one_key_is_one_series_and_names_group_their_series() {
        let histograms = Histograms::default();
        let a = Key::from_parts("x_seconds", vec![metrics::Label::new("route", "a")]);
        let b = Key::from_parts("x_seconds", vec![metrics::Label::new("route", "b")]);
        histograms.series(&a).record(1.0);
        histograms.series(&a.clone()).record(1.0);
        histograms.series(&b).record(1.0);
        let text = rendered(&histograms);
        assert_eq!(text.matches("# TYPE x_seconds histogram").count(), 1);
        assert!(text.contains("x_seconds_count{route=\"a\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_count{route=\"b\"} 1\n"), "{text}");
    }

    #[test]
    fn concurrent_samples_are_all_counted() {
        let histograms = Arc::new(Histograms::default());
        let key = Key::from_name("busy_seconds");
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let series = histograms.series(&key);
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        series.record(0.5);
                    }
                })
            })
            .collect();
        for _ in 0..50 {
            let _ = rendered(&histograms);
        }
        for writer in writers {
            writer.join().expect("writer thread");
        }
        let text = rendered(&histograms);
        assert!(text.contains("busy_seconds_count 400000\n"), "{text}");
        assert!(text.contains("busy_seconds_sum 200000\n"), "{text}");
    }
}
