//! The JSON access log: one line per request, written by a background task so a slow disk or a
//! full pipe never holds a request. Requests hand their record to a bounded channel; when it is
//! full the record is dropped and counted (`tollgate_access_log_dropped_total`), never waited for.
//! The writer is not woken per request (a cross-thread wake-up and a `write` per line would
//! cost more than the line): it writes what is queued every [`WRITE_EVERY`], or at once when a
//! sender sees a quarter of the queue taken, then flushes.
//!
//! Scrubbing rule (used by the `redact` plugin): for the fields `path`, `query`, `client_ip`,
//! `consumer`, `user_agent` and `referer`, when the request context has the key
//! `access_log.<field>`, the line shows that value instead of the raw one.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{AccessLogDestination, AccessLogSettings};

/// The fields a plugin may override through the context key `access_log.<field>`.
pub const OVERRIDABLE: [&str; 6] = [
    "path",
    "query",
    "client_ip",
    "consumer",
    "user_agent",
    "referer",
];

/// The context key prefix of overrides.
pub const CONTEXT_PREFIX: &str = "access_log.";

/// One line of the access log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessRecord {
    /// RFC 3339 UTC time the request arrived.
    pub timestamp: String,
    /// The request id (`X-Request-Id`, the client's or generated).
    pub request_id: String,
    /// Trace id (32 hex digits) of the W3C trace the request belongs to.
    pub trace_id: String,
    /// The matched route; `null` when none matched.
    pub route: Option<String>,
    /// Method as sent by the client.
    pub method: String,
    /// Path as sent by the client (before normalisation), unless overridden.
    pub path: String,
    /// Query string without `?`, unless overridden.
    pub query: Option<String>,
    /// Client address after the trusted-proxy rule, unless overridden.
    pub client_ip: String,
    /// The context key `consumer` set by an auth plugin, unless overridden.
    pub consumer: Option<String>,
    /// `User-Agent`, unless overridden.
    pub user_agent: Option<String>,
    /// `Referer`, unless overridden.
    pub referer: Option<String>,
    /// Status sent to the client.
    pub status: u16,
    /// Request body bytes received.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
    /// Whole exchange, arrival to last body byte, in milliseconds.
    pub duration_ms: f64,
    /// Time waiting for the upstream's response head, in milliseconds; `null` when not called.
    pub upstream_ms: Option<f64>,
    /// The upstream's name in the config; `null` when not called.
    pub upstream: Option<String>,
    /// The target (`host:port`) that served it; `null` when not called.
    pub upstream_target: Option<String>,
}

impl AccessRecord {
    /// Apply the plugins' overrides (`access_log.<field>` in the request context). Walks the
    /// context rather than looking each field up: it is usually empty, and then costs nothing
    /// (no key is built per field and request).
    pub fn apply_overrides(&mut self, context: &HashMap<String, String>) {
        for (key, value) in context {
            let Some(field) = key.strip_prefix(CONTEXT_PREFIX) else {
                continue;
            };
            let value = || value.clone();
            match field {
                "path" => self.path = value(),
                "query" => self.query = Some(value()),
                "client_ip" => self.client_ip = value(),
                "consumer" => self.consumer = Some(value()),
                "user_agent" => self.user_agent = Some(value()),
                "referer" => self.referer = Some(value()),
                _ => {}
            }
        }
    }
}

/// Longest a record waits in the queue before it is written (and flushed).
pub const WRITE_EVERY: Duration = Duration::from_millis(100);

/// The sending side of the access log. Cheap to share; the writer thread ends when every clone
/// is dropped (after writing what was queued).
#[derive(Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<AccessRecord>,
    /// The writer thread, unparked when `wake_at` records are waiting.
    writer: std::thread::Thread,
    wake_at: usize,
    dropped: Arc<AtomicU64>,
    settings: AccessLogSettings,
}

impl AccessLog {
    /// Open the destination and start the writer task; `None` when disabled.
    pub fn start(settings: &AccessLogSettings) -> std::io::Result<Option<Arc<Self>>> {
        if !settings.enabled {
            return Ok(None);
        }
        let out: Box<dyn Write + Send> = match &settings.destination {
            AccessLogDestination::Stdout => Box::new(std::io::stdout()),
            AccessLogDestination::Stderr => Box::new(std::io::stderr()),
            AccessLogDestination::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = mpsc::channel(settings.buffer.max(1));
        // Blocking writes belong on their own thread, not on a runtime worker.
        let writer = std::thread::Builder::new()
            .name("tollgate-access-log".into())
            .spawn(move || write_lines(rx, out))?;
        Ok(Some(Arc::new(Self {
            tx,
            writer: writer.thread().clone(),
            wake_at: (settings.buffer / 4).max(1),
            dropped: Arc::new(AtomicU64::new(0)),
            settings: settings.clone(),
        })))
    }

    /// The settings it was started with (a reload restarts it only when they change).
    pub fn settings(&self) -> &AccessLogSettings {
        &self.settings
    }

    /// Queue a record; never waits. A full queue drops the record and counts it.
    pub fn send(&self, record: AccessRecord) {
        let sent = self.tx.try_send(record);
        if self.tx.max_capacity() - self.tx.capacity() >= self.wake_at {
            self.writer.unpark();
        }
        if sent.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("tollgate_access_log_dropped_total").increment(1);
        }
    }

    /// Records dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer: every [`WRITE_EVERY`] (or when unparked), one JSON line per queued record,
/// then a flush; ends when every sender is gone and the queue is empty.
fn write_lines(mut rx: mpsc::Receiver<AccessRecord>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    let mut failed = false;
    loop {
        std::thread::park_timeout(WRITE_EVERY);
        let mut wrote = false;
        let closed = loop {
            match rx.try_recv() {
                Ok(record) => {
                    let result = serde_json::to_writer(&mut out, &record)
                        .map_err(std::io::Error::from)
                        .and_then(|()| out.write_all(b"\n"));
                    report(&mut failed, result);
                    wrote = true;
                }
                Err(mpsc::error::TryRecvError::Empty) => break false,
                Err(mpsc::error::TryRecvError::Disconnected) => break true,
            }
        };
        if wrote {
            let flushed = out.flush();
            report(&mut failed, flushed);
        }
        if closed {
            return;
        }
    }
}

/// Count write errors; log the first of a run, not every line.
fn report(failed: &mut bool, result: std::io::Result<()>) {
    match result {
        Ok(()) => *failed = false,
        Err(e) => {
            metrics::counter!("tollgate_access_log_write_errors_total").increment(1);
            if !*failed {
                tracing::error!(error = %e, "access log write failed");
            }
            *failed = true;
        }
    }
}

/// Query parameters whose values the access log always masks: common names for API keys and
/// tokens. The query parameter an auth plugin reads its key from (`api_key.query` in any
/// plugin's config) is added by [`secret_query_params`].
pub const SECRET_QUERY_PARAMS: [&str; 5] = ["api_key", "apikey", "key", "token", "access_token"];

/// [`SECRET_QUERY_PARAMS`] plus every `api_key.query` of the config's plugins, lower case.
pub fn secret_query_params(config: &crate::config::Config) -> Vec<String> {
    let mut names: Vec<String> = SECRET_QUERY_PARAMS
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    for plugin in config.plugins.values() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&plugin.config_json) else {
            continue;
        };
        if let Some(name) = value.pointer("/api_key/query").and_then(|v| v.as_str()) {
            let name = name.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The query with the value of every parameter in `names` (compared percent-decoded and
/// ignoring case) replaced by `***`; unchanged (and not copied) when there is none.
pub fn mask_query<'a>(query: &'a str, names: &[String]) -> std::borrow::Cow<'a, str> {
    let secret = |name: &str| {
        let decoded = percent_decode(name).to_ascii_lowercase();
        names.contains(&decoded)
    };
    let hit = query
        .split('&')
        .any(|pair| pair.split_once('=').is_some_and(|(name, _)| secret(name)));
    if !hit {
        return std::borrow::Cow::Borrowed(query);
    }
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    std::borrow::Cow::Owned(masked.join("&"))
}

/// `%XX` and `+` decoded; malformed escapes kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| char::from(*b).to_digit(16))
                .and_then(|d| u8::try_from(d).ok())
        };
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Now as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_their_fields() {
        let mut record = AccessRecord {
            path: "/users/alice".into(),
            query: Some("token=abc".into()),
            client_ip: "203.0.113.9".into(),
            method: "GET".into(),
            ..AccessRecord::default()
        };
        let context = HashMap::from([
            ("access_log.path".to_owned(), "/users/:id".to_owned()),
            ("access_log.query".to_owned(), "token=***".to_owned()),
            ("access_log.method".to_owned(), "NOPE".to_owned()),
            ("consumer".to_owned(), "bob".to_owned()),
        ]);
        record.apply_overrides(&context);
        assert_eq!(record.path, "/users/:id");
        assert_eq!(record.query.as_deref(), Some("token=***"));
        assert_eq!(record.client_ip, "203.0.113.9");
        assert_eq!(record.method, "GET");
        assert_eq!(record.consumer, None);
    }

    #[test]
    fn every_overridable_field_is_applied() {
        for field in OVERRIDABLE {
            let mut record = AccessRecord::default();
            let context =
                HashMap::from([(format!("{CONTEXT_PREFIX}{field}"), "masked".to_owned())]);
            record.apply_overrides(&context);
            let line = serde_json::to_value(&record).unwrap_or_default();
            assert_eq!(line[field], "masked", "{field} was not overridden");
        }
    }

    #[test]
    fn api_keys_in_the_query_are_masked() {
        let names: Vec<String> = ["api_key", "key", "x-auth"].map(String::from).into();
        assert_eq!(
            mask_query(
                "a=1&api_key=s3&KEY=s3&api%5Fkey=s3&x-auth=s3&keys=v",
                &names
            ),
            "a=1&api_key=***&KEY=***&api%5Fkey=***&x-auth=***&keys=v"
        );
        assert!(matches!(
            mask_query("a=1&b=2", &names),
            std::borrow::Cow::Borrowed("a=1&b=2")
        ));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let ts = now_rfc3339();
        assert!(ts.ends_with('Z'));
        assert!(
            time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339)
                .is_ok()
        );
    }
}
