//! Page speed with a year of usage: the store (SQLite) is filled with 365 days of daily usage
//! for 1,000 consumers on 3 routes (1.1 million rows) and 48 hours of minutes (20 consumers a
//! minute on each route), with the per-route and per-consumer rollups the control plane keeps
//! beside them, 1,000 consumer records on two plans and a quota config; then the
//! dashboard's usage pages (everything, one route, one consumer), the fleet page and a
//! developer's usage page are timed over real HTTP. Prints the times (docs/control-plane.md
//! quotes them); asserts only a generous bound, for debug builds on a busy machine.
//!
//! The rows are written straight into the database file while the control plane is stopped
//! (an SQL generator is what makes a million rows in seconds); the control plane then reads
//! them as it would its own.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::support::{ControlPlane, Database};
use crate::usage_browser::{Browser, class_text};

const DAY_MS: i64 = 86_400_000;
/// Generous: a debug build on a shared two-core machine.
const BOUND: Duration = Duration::from_secs(2);

const QUOTA_CONFIG: &str = r#"
[plugins.quota]
module = "modules/0000.wasm"
[plugins.quota.config]
plans = { free = { requests = 3000, period = "month" }, pro = { requests = 100, period = "day" } }
default_plan = "free"
"#;

/// Fill `url`'s usage tables (schema 3 must exist); the consumer `dev7` gets no record (it
/// signs up through the portal).
async fn fill(url: &str, now_ms: i64) {
    let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
    let today = now_ms - now_ms.rem_euclid(DAY_MS);
    let this_minute = now_ms - now_ms.rem_euclid(60_000);
    let statements = [
        format!(
            "WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 364), \
             c(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM c WHERE k < 999), \
             r(name) AS (SELECT 'orders' UNION ALL SELECT 'search' UNION ALL SELECT 'users') \
             INSERT INTO usage_days (day_ms, route, consumer, requests, errors, client_errors, latency) \
             SELECT {today} - n * {DAY_MS}, name, 'dev' || k, 100 + (n * 7 + k) % 50, (n + k) % 3, (n + k) % 5, \
             '10:60,20:35,45:5' FROM d, c, r"
        ),
        "INSERT INTO usage_route_days (day_ms, route, requests, errors, client_errors, latency) \
         SELECT day_ms, route, SUM(requests), SUM(errors), SUM(client_errors), '10:60000,20:35000,45:5000' \
         FROM usage_days GROUP BY day_ms, route"
            .to_owned(),
        format!(
            "WITH RECURSIVE m(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM m WHERE n < 2879), \
             j(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM j WHERE k < 19), \
             r(name) AS (SELECT 'orders' UNION ALL SELECT 'search' UNION ALL SELECT 'users') \
             INSERT INTO usage_minutes (minute_ms, route, consumer, requests, errors, client_errors, latency) \
             SELECT {this_minute} - n * 60000, name, 'dev' || ((n * 7 + k) % 1000), 5 + k, k % 2, 0, '10:3,20:2' \
             FROM m, j, r"
        ),
        "INSERT INTO usage_route_minutes (minute_ms, route, requests, errors, client_errors, latency) \
         SELECT minute_ms, route, SUM(requests), SUM(errors), SUM(client_errors), '10:60,20:40' \
         FROM usage_minutes GROUP BY minute_ms, route"
            .to_owned(),
        "INSERT INTO usage_consumer_days (day_ms, consumer, requests, errors, client_errors) \
         SELECT day_ms, consumer, SUM(requests), SUM(errors), SUM(client_errors) FROM usage_days \
         GROUP BY day_ms, consumer"
            .to_owned(),
        "INSERT INTO usage_consumer_hours (hour_ms, consumer, requests, errors, client_errors) \
         SELECT minute_ms - minute_ms % 3600000, consumer, SUM(requests), SUM(errors), SUM(client_errors) \
         FROM usage_minutes GROUP BY 1, consumer"
            .to_owned(),
        format!(
            "WITH RECURSIVE c(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM c WHERE k < 999) \
             INSERT INTO consumers (name, roles, plan, created_ms) \
             SELECT 'dev' || k, '[]', CASE WHEN k % 10 = 0 THEN 'pro' ELSE NULL END, {now_ms} FROM c WHERE k <> 7"
        ),
    ];
    for sql in &statements {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO revisions (id, config, author, message, created_ms) VALUES (1, $1, 'test', 'quota', $2)",
    )
    .bind(QUOTA_CONFIG)
    .bind(now_ms)
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
}

/// The median and the slowest of `n` GETs of `path`.
async fn time(b: &mut Browser<'_>, path: &str, n: usize) -> (Duration, Duration, String) {
    let mut took = Vec::new();
    let mut last = String::new();
    for _ in 0..n {
        let started = Instant::now();
        let (status, page) = b.get(path).await;
        took.push(started.elapsed());
        assert_eq!(status, 200, "{path}: {page}");
        last = page;
    }
    took.sort();
    (took[n / 2], took[n - 1], last)
}

#[tokio::test]
async fn usage_pages_load_fast_with_a_year_of_data_for_1000_consumers() {
    let db = Database::sqlite();
    let mut cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    cp.kill();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let started = Instant::now();
    fill(&db.url, now).await;
    println!(
        "filled a year of days and 48 h of minutes in {:?}",
        started.elapsed()
    );
    cp.restart();
    let mut operator = Browser::operator(&cp).await;
    let mut developer = Browser::developer(&cp, "dev7").await;
    let mut lines = Vec::new();
    for (who, path) in [
        ("operator", "/dashboard/usage"),
        ("operator", "/dashboard/usage?route=orders"),
        ("operator", "/dashboard/usage?consumer=dev42"),
        ("operator", "/dashboard/usage?route=users&consumer=dev42"),
        ("operator", "/dashboard"),
        ("developer", "/portal/usage"),
    ] {
        let b = if who == "operator" {
            &mut operator
        } else {
            &mut developer
        };
        let (median, slowest, page) = time(b, path, 5).await;
        lines.push(format!(
            "GET {path}: median {median:?}, slowest {slowest:?}"
        ));
        assert!(slowest < BOUND, "GET {path} took {slowest:?}");
        if path == "/dashboard/usage" {
            assert!(page.contains("id=\"quota-use\""), "quota table");
            let month: i64 = class_text(&page, "usage-month", "requests")
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                month >= 30 * 1000 * 3 * 100,
                "30 days of 3,000 (route, consumer) pairs: {month}"
            );
        }
        if path == "/portal/usage" {
            let hour: i64 = class_text(&page, "usage-hour", "requests")
                .unwrap()
                .parse()
                .unwrap();
            let month: i64 = class_text(&page, "usage-month", "requests")
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                (30 * 3 * 100..30 * 3 * 150).contains(&month),
                "dev7's own 30 days only: {month}"
            );
            assert!(hour < 60 * 3 * 25, "dev7's own hour only: {hour}");
        }
    }
    for line in &lines {
        println!("{line}");
    }
}
