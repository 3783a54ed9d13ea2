//! Spike alerts (docs/control-plane.md, "Spike alerts"): two background tasks of the control
//! plane. The detector task reads the per-minute usage the gateways report (`usage_minutes`) every
//! `interval`, applies the rule in `detector`, and stores each new spike as an alert with a
//! pending delivery per webhook; the delivery task sends those (`webhook`), retrying with backoff.
//! Neither is on the path of a request or of the gateways' reports: they only read and write
//! the store. `api` serves `/v1/alerts`; the dashboard page is `portal::alerts`.
//!
//! Layers: `detector` (pure), `store`, `webhook`, `api`, then this module.

pub mod api;
pub mod detector;
pub mod store;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::Control;
use super::store::{Store, StoreError, now_ms};
use detector::{Episodes, Sample, Settings};

/// The `tollgate control` options of spike alerts.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    /// Spike alerts: z-score (against the EWMA baseline) at or above which a minute spikes.
    #[arg(long, default_value_t = 4.0)]
    alert_z: f64,
    /// Spike alerts: the value must also be at least this multiple of the baseline.
    #[arg(long, default_value_t = 2.0)]
    alert_ratio: f64,
    /// Spike alerts: requests per minute below which a series never alerts.
    #[arg(long, default_value_t = 30.0)]
    alert_min_requests: f64,
    /// Spike alerts: 5xx per minute below which the error rate never alerts.
    #[arg(long, default_value_t = 10.0)]
    alert_min_errors: f64,
    /// Spike alerts: minutes of baseline a series needs before it can alert.
    #[arg(long, default_value_t = 5)]
    alert_warmup_minutes: usize,
    /// Spike alerts: a series alerts again only after this many minutes without a spike.
    #[arg(long, default_value_t = 10)]
    alert_cooldown_minutes: i64,
    /// How often the rule runs, in ms.
    #[arg(long, default_value_t = 10_000, hide = true)]
    alert_interval_ms: u64,
}

/// How spike alerts run.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertOptions {
    /// The rule's parameters.
    pub settings: Settings,
    /// How often it runs.
    pub interval: Duration,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions {
            settings: Settings::default(),
            interval: Duration::from_secs(10),
        }
    }
}

impl AlertArgs {
    /// The options these arguments give; `Err` names a bad value.
    pub fn options(&self) -> Result<AlertOptions, String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(format!("--{name} must be a positive number, not {v}"))
            }
        };
        let settings = Settings {
            z: positive("alert-z", self.alert_z)?,
            ratio: positive("alert-ratio", self.alert_ratio)?,
            min_requests: positive("alert-min-requests", self.alert_min_requests)?,
            min_errors: positive("alert-min-errors", self.alert_min_errors)?,
            warmup: self.alert_warmup_minutes.max(1),
            cooldown_ms: self.alert_cooldown_minutes.clamp(0, 7 * 24 * 60) * 60_000,
            ..Settings::default()
        };
        Ok(AlertOptions {
            settings,
            interval: Duration::from_millis(self.alert_interval_ms.clamp(100, 600_000)),
        })
    }
}

/// Start the detector and delivery tasks.
pub fn spawn(ctl: Arc<Control>, options: AlertOptions) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(detect_loop(
        ctl.clone(),
        options.settings,
        options.interval,
        wake.clone(),
    ));
    tokio::spawn(deliver_loop(ctl, wake));
}

async fn detect_loop(ctl: Arc<Control>, settings: Settings, interval: Duration, wake: Arc<Notify>) {
    let mut episodes = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match detect(&ctl.store, &settings, &mut episodes).await {
            Ok(0) => {}
            Ok(_) => wake.notify_one(),
            Err(e) => tracing::warn!(error = %e, "spike detection failed; retrying"),
        }
    }
}

/// One run of the rule; how many alerts it stored. The open episodes are rebuilt from the
/// stored alerts on the first run (a restart neither loses the baseline, read from the store,
/// nor alerts again for a spike it already alerted for).
async fn detect(
    store: &Store,
    settings: &Settings,
    episodes: &mut Option<Episodes>,
) -> Result<usize, StoreError> {
    let now = now_ms();
    if episodes.is_none() {
        let open = store
            .recent_alert_series(now - settings.cooldown_ms)
            .await?;
        *episodes = Some(Episodes::from_alerts(open));
    }
    let samples = usage(store, now - settings.history_ms()).await?;
    let spikes = detector::evaluate(&samples, now, settings);
    let Some(episodes) = episodes.as_mut() else {
        return Ok(0);
    };
    let new = episodes.admit(spikes, now, settings);
    if new.is_empty() {
        return Ok(0);
    }
    for alert in store.add_alerts(&new).await? {
        tracing::warn!(
            id = alert.id,
            route = %alert.series.route,
            consumer = alert.series.consumer.as_deref().unwrap_or("*"),
            metric = alert.metric.name(),
            value = alert.value,
            baseline = alert.baseline,
            z = alert.z,
            "spike alert"
        );
    }
    Ok(new.len())
}

/// The usage rows since `since_ms`, as the detector's samples.
async fn usage(store: &Store, since_ms: i64) -> Result<Vec<Sample>, StoreError> {
    Ok(store
        .usage_minutes_since(since_ms)
        .await?
        .into_iter()
        .map(|u| Sample {
            minute_ms: u.minute_ms,
            route: u.route,
            consumer: u.consumer,
            requests: u.requests,
            errors: u.errors,
        })
        .collect())
}

async fn deliver_loop(ctl: Arc<Control>, wake: Arc<Notify>) {
    let client = webhook::client();
    let retry = webhook::Retry::default();
    loop {
        if let Err(e) = webhook::deliver_due(&ctl.store, &client, &retry).await {
            tracing::warn!(error = %e, "alert delivery failed; retrying");
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), wake.notified()).await;
    }
}
