//! Spike alerts end to end, on SQLite and on PostgreSQL: a gateway follows the control plane and
//! reports its usage; traffic is steady on three routes for the baseline (no alert), then
//! `orders` gets 10× its rate and `payments`' upstream answers 500. Within 2 minutes exactly one
//! alert per spike (request rate on `orders`, error rate on `payments`, none on `catalog`)
//! reaches a webhook receiver that checks the HMAC signature and refuses each alert's first
//! attempt (so each is retried), and shows in `GET /v1/alerts` and on `/dashboard/alerts`.
//! The control plane is restarted while the spikes go on: no second alert. The control plane runs
//! with a 1-minute warm-up instead of 5 (everything else as in
//! production), so the scenario takes about 3 minutes. Prints the detection time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use sha2::Sha256;
use tollgate_tests::{Upstream, client, echo_response, send};

use crate::support::{ADMIN, ControlPlane, Database, Node};

const SECRET: &str = "webhook-secret-0123456789";

fn config(upstream: &str) -> String {
    tollgate_tests::expand(&format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.app]
targets = ["{upstream}"]

[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "app"

[[routes]]
name = "payments"
path_prefix = "/payments"
upstream = "app"

[[routes]]
name = "catalog"
path_prefix = "/catalog"
upstream = "app"
"#
    ))
}

/// One POST the receiver got: the alert, whether the signature checked, what it answered.
#[derive(Debug, Clone)]
struct Received {
    alert: serde_json::Value,
    signed: bool,
    answered: u16,
    at: Instant,
}

/// A webhook receiver on 127.0.0.1:0 that checks `X-Tollgate-Signature` with its own HMAC and
/// answers 503 to the first attempt of each alert.
async fn receiver() -> (Upstream, Arc<Mutex<Vec<Received>>>) {
    let got = Arc::new(Mutex::new(Vec::<Received>::new()));
    let log = got.clone();
    let upstream = Upstream::start(Arc::new(move |req| {
        let log = log.clone();
        Box::pin(async move {
            let header = |n: &str| {
                req.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let (ts, sig) = (
                header("x-tollgate-timestamp"),
                header("x-tollgate-signature"),
            );
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(req.body());
            let want: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let now_s = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let fresh = ts.parse::<u64>().is_ok_and(|t| now_s.abs_diff(t) < 300);
            let signed = fresh && sig == format!("sha256={want}");
            let event: serde_json::Value = serde_json::from_slice(req.body()).unwrap_or_default();
            let mut log = log.lock().unwrap();
            let seen = log.iter().any(|r| r.alert["id"] == event["alert"]["id"]);
            let answered = if seen && signed { 200 } else { 503 };
            log.push(Received {
                alert: event["alert"].clone(),
                signed,
                answered,
                at: Instant::now(),
            });
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::from_u16(answered).unwrap();
            r
        })
    }))
    .await;
    (upstream, got)
}

/// Requests to each (path, per second) of `rates` until `stop`; how many got neither 200 nor 500.
fn traffic(
    node: String,
    rates: Arc<Mutex<Vec<(&'static str, u64)>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let failed = Arc::new(AtomicUsize::new(0));
        let c = client();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut n: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            n += 1;
            let due: Vec<&str> = {
                let rates = rates.lock().unwrap();
                // 20 ticks a second: a path at r/s is due on r of every 20 ticks.
                rates
                    .iter()
                    .filter(|(_, r)| (n * r / 20) != ((n - 1) * r / 20))
                    .map(|(p, _)| *p)
                    .collect()
            };
            for path in due {
                let (c, url, failed) = (c.clone(), format!("{node}{path}"), failed.clone());
                tokio::spawn(async move {
                    let r = send(&c, Method::GET, &url, &[], Bytes::new()).await;
                    if r.status != 200 && r.status != 500 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        }
        failed.load(Ordering::Relaxed)
    })
}

/// The dashboard's alerts page, signed in with the admin token.
async fn dashboard_alerts(cp: &ControlPlane) -> String {
    let c = client();
    let page = send(
        &c,
        Method::GET,
        &format!("{}/dashboard/signin", cp.url()),
        &[],
        Bytes::new(),
    )
    .await;
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .find_map(|v| v.to_str().ok()?.strip_prefix("tollgate_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let body = String::from_utf8_lossy(&page.body).into_owned();
    let at = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = body[at..].split('"').next().unwrap().to_owned();
    let cookie = format!("tollgate_session={cookie}");
    let form = format!("csrf={csrf}&token={ADMIN}");
    let headers = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let signed = send(
        &c,
        Method::POST,
        &format!("{}/dashboard/signin", cp.url()),
        &headers,
        form,
    )
    .await;
    assert_eq!(signed.status, 303);
    let new_cookie = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .find_map(|v| v.to_str().ok()?.strip_prefix("tollgate_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let cookie = format!("tollgate_session={new_cookie}");
    let r = send(
        &c,
        Method::GET,
        &format!("{}/dashboard/alerts", cp.url()),
        &[("cookie", &cookie)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Unix ms now.
fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Sleep until the wall clock is `seconds` into the minute starting at `minute_ms`.
async fn until_minute(minute_ms: u64, seconds: u64) {
    let target = minute_ms + seconds * 1000;
    let now = now_ms();
    if target > now {
        tokio::time::sleep(Duration::from_millis(target - now)).await;
    }
}

async fn alerts(cp: &ControlPlane) -> Vec<serde_json::Value> {
    let r = cp.api(Method::GET, "/v1/alerts", ADMIN, None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json().as_array().unwrap().clone()
}

async fn scenario(db: Database, label: &str) {
    let failing = Arc::new(AtomicBool::new(false));
    let fail = failing.clone();
    let upstream = Upstream::start(Arc::new(move |req| {
        let fail = fail.load(Ordering::Relaxed) && req.uri().path().starts_with("/payments");
        Box::pin(async move {
            let mut r = echo_response("app", &req);
            if fail {
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            r
        })
    }))
    .await;
    let (hooks, received) = receiver().await;
    let mut cp = ControlPlane::start_with(
        &db,
        &["--alert-warmup-minutes", "1", "--alert-interval-ms", "1000"],
    );
    let hook = serde_json::json!({"url": format!("http://{}/hook", hooks.addr), "secret": SECRET});
    let r = cp
        .api(Method::POST, "/v1/alerts/webhooks", ADMIN, Some(hook))
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let listed = cp
        .api(Method::GET, "/v1/alerts/webhooks", ADMIN, None)
        .await
        .json();
    assert_eq!(
        listed[0]["secret"], "********",
        "the secret is never returned: {listed}"
    );

    let dir = tempfile::tempdir().unwrap();
    let node_token = cp.token("edge", "node").await;
    let operator = cp.token("ops", "operator").await;
    crate::support::apply(
        &cp,
        &operator,
        dir.path(),
        &config(&upstream.target()),
        "routes",
    );
    let node = Node::start(&cp, &node_token, "gw0");

    // Steady: 3 requests/s on each route (180/min, over the 30/min minimum).
    let rates = Arc::new(Mutex::new(vec![
        ("/orders", 3),
        ("/payments", 3),
        ("/catalog", 3),
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(node.url(""), rates.clone(), stop.clone());
    // The first minute is partial, the next is the 1-minute baseline, the one after is evaluated
    // against it under steady traffic: the spike starts 2 s into the minute after that.
    let first = now_ms() / 60_000 * 60_000;
    println!(
        "[{label}] steady traffic from {} ms past the minute",
        now_ms() - first
    );
    until_minute(first + 3 * 60_000, 2).await;
    assert!(
        alerts(&cp).await.is_empty(),
        "[{label}] alert on steady traffic: {:?}",
        alerts(&cp).await
    );
    assert!(received.lock().unwrap().is_empty());

    // The spikes.
    let spike = Instant::now();
    println!(
        "[{label}] spike at {} ms past the minute",
        now_ms() % 60_000
    );
    rates.lock().unwrap()[0].1 = 30;
    failing.store(true, Ordering::Relaxed);
    let deadline = spike + Duration::from_secs(120);
    let delivered = loop {
        let got = received.lock().unwrap().clone();
        let ok: Vec<&Received> = got.iter().filter(|r| r.answered == 200).collect();
        if ok.len() >= 2 {
            break ok.iter().map(|r| r.at.duration_since(spike)).max().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "[{label}] no 2 alerts delivered within 2 min: {got:?}\n{:?}",
            alerts(&cp).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Delivery is at least once: a control plane stopped between the receiver's 200 and its own
    // record of it sends again. So the restart waits until both deliveries are recorded.
    while !alerts(&cp)
        .await
        .iter()
        .all(|a| a["deliveries"][0]["state"] == "delivered")
    {
        assert!(
            Instant::now() < deadline,
            "[{label}] deliveries not recorded: {:?}",
            alerts(&cp).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The spikes go on for 20 s more, with the control plane restarted in between: still one
    // alert each (the open episodes are rebuilt from the stored alerts).
    cp.kill();
    cp.restart();
    tokio::time::sleep(Duration::from_secs(20)).await;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(load.await.unwrap(), 0, "requests failed");

    let list = alerts(&cp).await;
    let mut by_metric: HashMap<String, &serde_json::Value> = HashMap::new();
    for a in &list {
        let key = format!(
            "{} {} {}",
            a["series"]["route"], a["series"]["consumer"], a["metric"]
        );
        assert!(
            by_metric.insert(key, a).is_none(),
            "[{label}] two alerts for one spike: {list:#?}"
        );
    }
    assert_eq!(list.len(), 2, "[{label}] {list:#?}");
    let orders = by_metric["\"orders\" null \"request_rate\""];
    let payments = by_metric["\"payments\" null \"error_rate\""];
    assert!(
        orders["value"].as_f64().unwrap() > 3.0 * orders["baseline"].as_f64().unwrap(),
        "{orders}"
    );
    assert!(orders["z"].as_f64().unwrap() >= 4.0);
    assert!(payments["value"].as_f64().unwrap() > 0.5, "{payments}");
    for a in &list {
        let d = &a["deliveries"][0];
        assert_eq!(d["state"], "delivered", "{a}");
        assert_eq!(d["attempts"], 2, "the first attempt was refused: {a}");
        assert!(d["last_error"].as_str().unwrap().is_empty(), "{a}");
    }
    let got = received.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        4,
        "each alert: one refused attempt, one delivered: {got:?}"
    );
    assert!(
        got.iter().all(|r| r.signed),
        "a signature did not check: {got:?}"
    );
    let page = dashboard_alerts(&cp).await;
    for needle in [
        "orders",
        "payments",
        "requests/min",
        "error rate",
        "delivered",
    ] {
        assert!(
            page.contains(needle),
            "[{label}] the alerts page lacks {needle:?}:\n{page}"
        );
    }
    assert!(
        !page.contains("catalog"),
        "[{label}] steady route on the alerts page"
    );
    println!(
        "[{label}] both spikes detected and delivered (after one refused attempt) {:.1} s after they began",
        delivered.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spikes_alert_once_each_on_sqlite() {
    scenario(Database::sqlite(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spikes_alert_once_each_on_postgres() {
    scenario(Database::postgres(), "postgres").await;
}
