//! The spike rule, pure (no clock, no store): given per-minute usage rows and "now", which
//! series spike in the minute being evaluated, and (in [`Episodes`]) which of those are new.
//!
//! A series is a route (all its consumers summed) or a (route, consumer) pair. For each series
//! and metric (requests per minute; error rate = 5xx / requests) the baseline is an EWMA mean and
//! variance over the completed minutes before the evaluated one. The evaluated minute is the
//! current one, scaled to a full minute, once `min_elapsed_ms` of it have passed (so a spike is
//! seen within its first minute), else the previous one. It is a spike when all hold:
//!
//! * the baseline has `warmup` minutes (the minute a series first appears is not counted: it is
//!   usually partial);
//! * volume: at least `min_requests` requests per minute (and `min_errors` errors per minute for
//!   the error rate), so quiet APIs do not page;
//! * `z = (x − mean) / sd ≥ z`, with `sd` floored at the sampling noise (√mean for counts,
//!   √(p(1−p)/n) and 0.01 for a rate), so a perfectly flat baseline does not make every wiggle
//!   a spike;
//! * `x ≥ ratio × mean`.
//!
//! Minutes folded into the baseline are clamped at `mean + z·sd`, so a spike does not inflate the
//! baseline it is measured against, while a lasting level change is learned over a few minutes.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// The rule's parameters (docs/control-plane.md, "Spike alerts").
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Length of a usage bucket (a minute: the gateways' reporting unit).
    pub bucket_ms: i64,
    /// EWMA weight of the newest minute.
    pub alpha: f64,
    /// z-score at or above which a minute is a spike.
    pub z: f64,
    /// The value must also be at least this multiple of the baseline mean.
    pub ratio: f64,
    /// Requests per minute below which nothing alerts.
    pub min_requests: f64,
    /// Errors per minute below which the error rate does not alert.
    pub min_errors: f64,
    /// Completed minutes of baseline needed before a series can alert.
    pub warmup: usize,
    /// How much of the current minute must have passed before it is evaluated (scaled).
    pub min_elapsed_ms: i64,
    /// A series in alert alerts again only after this long without a spike.
    pub cooldown_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bucket_ms: 60_000,
            alpha: 0.3,
            z: 4.0,
            ratio: 2.0,
            min_requests: 30.0,
            min_errors: 10.0,
            warmup: 5,
            min_elapsed_ms: 15_000,
            cooldown_ms: 10 * 60_000,
        }
    }
}

impl Settings {
    /// How far back the usage rows must go: the warm-up plus enough minutes for the EWMA to
    /// forget its start (1 − alpha)^n < 1 %.
    pub fn history_ms(&self) -> i64 {
        let forget = (0.01f64.ln() / (1.0 - self.alpha).max(0.01).ln()).ceil();
        let minutes =
            i64::try_from(self.warmup).unwrap_or(60) + 2 + forget.clamp(1.0, 240.0) as i64;
        minutes * self.bucket_ms
    }
}

/// One usage row: a minute's counts for a (route, consumer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Start of the minute, Unix ms.
    pub minute_ms: i64,
    /// Route name.
    pub route: String,
    /// Consumer name.
    pub consumer: String,
    /// Requests.
    pub requests: i64,
    /// Server errors (5xx).
    pub errors: i64,
}

/// A route, or one consumer of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Series {
    /// Route name.
    pub route: String,
    /// `None` for the whole route.
    pub consumer: Option<String>,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Requests per minute.
    RequestRate,
    /// 5xx responses / requests.
    ErrorRate,
}

impl Metric {
    /// Its name in the API and the store.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestRate => "request_rate",
            Metric::ErrorRate => "error_rate",
        }
    }

    /// The metric named `name`.
    pub fn parse(name: &str) -> Option<Metric> {
        match name {
            "request_rate" => Some(Metric::RequestRate),
            "error_rate" => Some(Metric::ErrorRate),
            _ => None,
        }
    }
}

/// A spiking minute of one series and metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spike {
    /// The series.
    pub series: Series,
    /// The metric.
    pub metric: Metric,
    /// The minute evaluated (its start, Unix ms).
    pub minute_ms: i64,
    /// Its value (requests per minute, scaled when partial; or the error rate).
    pub value: f64,
    /// The baseline mean.
    pub baseline: f64,
    /// The z-score against the baseline.
    pub z: f64,
}

/// Per-minute counts of one series, by minute start.
type Minutes = BTreeMap<i64, (i64, i64)>;

/// Every spike in the evaluated minute at `now_ms`. When a route spikes, its consumers' spikes
/// of the same metric are left out (one alert per spike, the widest series).
pub fn evaluate(samples: &[Sample], now_ms: i64, s: &Settings) -> Vec<Spike> {
    let bucket = s.bucket_ms.max(1);
    let current = now_ms.div_euclid(bucket) * bucket;
    let elapsed = now_ms - current;
    let (target, scale) = if elapsed >= s.min_elapsed_ms.clamp(1, bucket) {
        (current, bucket as f64 / elapsed as f64)
    } else {
        (current - bucket, 1.0)
    };
    let mut series: BTreeMap<Series, Minutes> = BTreeMap::new();
    for row in samples.iter().filter(|r| r.minute_ms <= target) {
        let minute = row.minute_ms.div_euclid(bucket) * bucket;
        let route = Series {
            route: row.route.clone(),
            consumer: None,
        };
        let pair = Series {
            route: row.route.clone(),
            consumer: Some(row.consumer.clone()),
        };
        for key in [route, pair] {
            let slot = series.entry(key).or_default().entry(minute).or_default();
            slot.0 = slot.0.saturating_add(row.requests);
            slot.1 = slot.1.saturating_add(row.errors);
        }
    }
    let mut spikes: Vec<Spike> = series
        .iter()
        .flat_map(|(key, minutes)| spikes_of(key, minutes, target, scale, s))
        .collect();
    let route_spikes: Vec<(String, Metric)> = spikes
        .iter()
        .filter(|x| x.series.consumer.is_none())
        .map(|x| (x.series.route.clone(), x.metric))
        .collect();
    spikes.retain(|x| {
        x.series.consumer.is_none() || !route_spikes.contains(&(x.series.route.clone(), x.metric))
    });
    spikes
}

/// The spikes of one series in minute `target` (counts multiplied by `scale`).
fn spikes_of(key: &Series, minutes: &Minutes, target: i64, scale: f64, s: &Settings) -> Vec<Spike> {
    let Some((&first, _)) = minutes.iter().next() else {
        return Vec::new();
    };
    let mut requests = Ewma::default();
    let mut rate = Ewma::default();
    let mut minute = first + s.bucket_ms;
    while minute < target {
        let (req, err) = minutes.get(&minute).copied().unwrap_or((0, 0));
        requests.fold(req as f64, count_floor, s);
        if req > 0 {
            let p = err as f64 / req as f64;
            rate.fold(p, |mean| rate_floor(mean, req as f64), s);
        }
        minute += s.bucket_ms;
    }
    let (req, err) = minutes.get(&target).copied().unwrap_or((0, 0));
    let (req_x, err_x) = (req as f64 * scale, err as f64 * scale);
    let spike = |metric, value: f64, baseline: &Ewma, floor: f64| {
        let z = (value - baseline.mean) / baseline.sd().max(floor);
        (baseline.n >= s.warmup && z >= s.z && value >= s.ratio * baseline.mean).then(|| Spike {
            series: key.clone(),
            metric,
            minute_ms: target,
            value,
            baseline: baseline.mean,
            z,
        })
    };
    let mut found = Vec::new();
    if req_x < s.min_requests || req == 0 {
        return found;
    }
    found.extend(spike(
        Metric::RequestRate,
        req_x,
        &requests,
        count_floor(requests.mean),
    ));
    if err_x >= s.min_errors {
        let p = err as f64 / req as f64;
        found.extend(spike(
            Metric::ErrorRate,
            p,
            &rate,
            rate_floor(rate.mean, req as f64),
        ));
    }
    found
}

/// The noise floor of a per-minute count: Poisson, √mean, at least 1.
fn count_floor(mean: f64) -> f64 {
    mean.max(0.0).sqrt().max(1.0)
}

/// The noise floor of a rate over `n` requests: binomial, √(p(1−p)/n), at least 0.01.
fn rate_floor(mean: f64, n: f64) -> f64 {
    let p = mean.clamp(0.0, 1.0);
    (p * (1.0 - p) / n.max(1.0)).sqrt().max(0.01)
}

/// An exponentially weighted mean and variance, and how many values went in.
#[derive(Debug, Default, Clone)]
struct Ewma {
    mean: f64,
    var: f64,
    n: usize,
}

impl Ewma {
    fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    /// Add `x`, clamped at `mean + z·sd` once warmed up (a spike does not become its baseline).
    fn fold(&mut self, x: f64, floor: impl Fn(f64) -> f64, s: &Settings) {
        if self.n == 0 {
            self.mean = x;
            self.n = 1;
            return;
        }
        let x = if self.n >= s.warmup {
            x.min(self.mean + s.z * self.sd().max(floor(self.mean)))
        } else {
            x
        };
        let diff = x - self.mean;
        let step = s.alpha * diff;
        self.mean += step;
        self.var = (1.0 - s.alpha) * (self.var + diff * step);
        self.n += 1;
    }
}

/// Which (series, metric) are in an alert episode: the last time each spiked. A spike of a
/// series not in an episode (none, or none for `cooldown_ms`) is new and alerts.
#[derive(Debug, Default)]
pub struct Episodes {
    last_spike: HashMap<(Series, Metric), i64>,
}

impl Episodes {
    /// Episodes from stored alerts: (series, metric, when it was detected).
    pub fn from_alerts(alerts: impl IntoIterator<Item = (Series, Metric, i64)>) -> Episodes {
        let mut episodes = Episodes::default();
        for (series, metric, at) in alerts {
            let slot = episodes.last_spike.entry((series, metric)).or_insert(at);
            *slot = (*slot).max(at);
        }
        episodes
    }

    /// The spikes (seen at `now_ms`) that start a new episode; all extend their episode.
    pub fn admit(&mut self, spikes: Vec<Spike>, now_ms: i64, s: &Settings) -> Vec<Spike> {
        let mut new = Vec::new();
        for spike in spikes {
            let key = (spike.series.clone(), spike.metric);
            let open = self
                .last_spike
                .get(&key)
                .is_some_and(|&last| now_ms - last < s.cooldown_ms);
            self.last_spike.insert(key, now_ms);
            if !open {
                new.push(spike);
            }
        }
        self.last_spike
            .retain(|_, last| now_ms - *last < s.cooldown_ms.saturating_mul(2));
        new
    }
}

#[cfg(test)]
#[path = "detector_tests.rs"]
mod tests;
