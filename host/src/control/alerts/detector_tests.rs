use super::*;

const MIN: i64 = 60_000;
/// A minute boundary, well after 0.
const T0: i64 = 1_000 * MIN;

fn row(minute: i64, route: &str, consumer: &str, requests: i64, errors: i64) -> Sample {
    Sample {
        minute_ms: T0 + minute * MIN,
        route: route.into(),
        consumer: consumer.into(),
        requests,
        errors,
    }
}

/// `minutes` minutes of `per_minute` requests (±10 % deterministic wiggle) for alice on `api`.
fn steady(minutes: i64, per_minute: i64, errors: i64) -> Vec<Sample> {
    (0..minutes)
        .map(|m| {
            let wiggle = [0, 3, -4, 6, -2, -6, 5, 1][(m % 8) as usize] * per_minute / 60;
            row(m, "api", "alice", per_minute + wiggle, errors)
        })
        .collect()
}

/// Now: `seconds` into minute `minute`.
fn at(minute: i64, seconds: i64) -> i64 {
    T0 + minute * MIN + seconds * 1000
}

#[test]
fn steady_traffic_never_spikes() {
    let s = Settings::default();
    let rows = steady(60, 120, 1);
    for minute in 6..60 {
        for seconds in [0, 16, 30, 59] {
            // The current minute is partial: only the share reported so far.
            let mut seen: Vec<Sample> = rows
                .iter()
                .filter(|r| r.minute_ms < at(minute, 0))
                .cloned()
                .collect();
            seen.push(row(minute, "api", "alice", 120 * seconds / 60, 0));
            let spikes = evaluate(&seen, at(minute, seconds), &s);
            assert!(spikes.is_empty(), "minute {minute}+{seconds}s: {spikes:?}");
        }
    }
}

#[test]
fn a_tenfold_rate_is_one_route_spike_within_its_first_minute() {
    let s = Settings::default();
    let mut rows = steady(10, 120, 0);
    // 20 s into minute 10, at 10× the rate: 400 requests so far.
    rows.push(row(10, "api", "alice", 400, 0));
    let spikes = evaluate(&rows, at(10, 20), &s);
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    let spike = &spikes[0];
    assert_eq!(
        spike.series.consumer, None,
        "the consumer's spike is folded into the route's"
    );
    assert_eq!(spike.metric, Metric::RequestRate);
    assert_eq!(spike.minute_ms, at(10, 0));
    assert!((spike.value - 1200.0).abs() < 1e-6, "{spike:?}");
    assert!((100.0..140.0).contains(&spike.baseline), "{spike:?}");
    assert!(spike.z > 4.0);
}

#[test]
fn before_min_elapsed_the_previous_minute_is_evaluated() {
    let s = Settings::default();
    let mut rows = steady(10, 120, 0);
    rows.push(row(10, "api", "alice", 1200, 0));
    rows.push(row(11, "api", "alice", 5, 0));
    let spikes = evaluate(&rows, at(11, 5), &s);
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    assert_eq!(spikes[0].minute_ms, at(10, 0));
    assert!((spikes[0].value - 1200.0).abs() < 1e-6);
}

#[test]
fn no_spike_during_warm_up() {
    let s = Settings::default();
    // Minute 0 is the partial first one; 1..=4 are 4 minutes of baseline, one short.
    let mut rows = steady(5, 120, 0);
    rows.push(row(5, "api", "alice", 1200, 0));
    assert!(evaluate(&rows, at(6, 0), &s).is_empty());
    let mut rows = steady(6, 120, 0);
    rows.push(row(6, "api", "alice", 1200, 0));
    assert_eq!(evaluate(&rows, at(7, 0), &s).len(), 1);
}

#[test]
fn quiet_apis_do_not_page() {
    let s = Settings::default();
    let mut rows = steady(10, 2, 0);
    // 10× a quiet API's rate is still under the minimum volume.
    rows.push(row(10, "api", "alice", 20, 0));
    assert!(evaluate(&rows, at(11, 0), &s).is_empty());
    // 60 requests in a minute is over it.
    rows.pop();
    rows.push(row(10, "api", "alice", 60, 0));
    assert_eq!(evaluate(&rows, at(11, 0), &s).len(), 1);
}

#[test]
fn a_flat_baseline_does_not_make_a_small_wiggle_a_spike() {
    let s = Settings::default();
    let mut rows: Vec<Sample> = (0..20).map(|m| row(m, "api", "alice", 100, 0)).collect();
    // Variance is zero; +30 % is within the Poisson floor (√100 = 10, z = 3) and under 2×.
    rows.push(row(20, "api", "alice", 130, 0));
    assert!(evaluate(&rows, at(21, 0), &s).is_empty());
}

#[test]
fn a_burst_of_server_errors_is_an_error_rate_spike_not_a_rate_spike() {
    let s = Settings::default();
    let mut rows = steady(10, 120, 1);
    rows.push(row(10, "api", "alice", 120, 60));
    let spikes = evaluate(&rows, at(11, 0), &s);
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    assert_eq!(spikes[0].metric, Metric::ErrorRate);
    assert!((spikes[0].value - 0.5).abs() < 1e-9);
    // A few more errors than usual are not enough (min_errors).
    let mut rows = steady(10, 120, 0);
    rows.push(row(10, "api", "alice", 120, 8));
    assert!(evaluate(&rows, at(11, 0), &s).is_empty());
}

#[test]
fn one_consumer_spiking_inside_a_busy_route_is_a_consumer_spike() {
    let s = Settings::default();
    let mut rows = steady(10, 3000, 0);
    for m in 0..10 {
        rows.push(row(m, "api", "bob", 40, 0));
    }
    rows.push(row(10, "api", "alice", 3000, 0));
    rows.push(row(10, "api", "bob", 400, 0));
    let spikes = evaluate(&rows, at(11, 0), &s);
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    assert_eq!(spikes[0].series.consumer.as_deref(), Some("bob"));
}

#[test]
fn a_spike_does_not_become_its_own_baseline() {
    let s = Settings::default();
    let mut rows = steady(10, 120, 0);
    rows.push(row(10, "api", "alice", 1200, 0));
    rows.push(row(11, "api", "alice", 1200, 0));
    let spikes = evaluate(&rows, at(12, 0), &s);
    assert_eq!(
        spikes.len(),
        1,
        "the second spiking minute is still a spike: {spikes:?}"
    );
    assert!(spikes[0].baseline < 200.0, "{spikes:?}");
}

#[test]
fn an_episode_alerts_once_and_again_after_the_cooldown() {
    let s = Settings::default();
    let mut episodes = Episodes::default();
    let spike = |minute| Spike {
        series: Series {
            route: "api".into(),
            consumer: None,
        },
        metric: Metric::RequestRate,
        minute_ms: at(minute, 0),
        value: 1200.0,
        baseline: 120.0,
        z: 50.0,
    };
    assert_eq!(episodes.admit(vec![spike(10)], at(10, 20), &s).len(), 1);
    for minute in 11..30 {
        assert!(
            episodes
                .admit(vec![spike(minute)], at(minute, 0), &s)
                .is_empty()
        );
    }
    // Quiet for the cooldown, then a new spike alerts.
    assert!(episodes.admit(vec![], at(35, 0), &s).is_empty());
    assert_eq!(episodes.admit(vec![spike(40)], at(40, 0), &s).len(), 1);
    // Rebuilt from stored alerts: an alert a minute ago keeps the episode open.
    let mut rebuilt = Episodes::from_alerts([(spike(0).series, Metric::RequestRate, at(40, 0))]);
    assert!(rebuilt.admit(vec![spike(41)], at(41, 0), &s).is_empty());
}
