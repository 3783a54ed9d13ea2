//! The JSON access log: one line per request, written by a background task so a slow disk or a
//! full pipe never holds a request. The worker that served a request writes its JSON line
//! ([`line`]) and hands it to a bounded channel; when that is full the line is dropped and
//! counted (`tollgate_access_log_dropped_total`), never waited for.
//! The writer is not woken per request (a cross-thread wake-up and a `write` per line would
//! cost more than the line): it writes what is queued every [`WRITE_EVERY`], or at once when a
//! sender sees a quarter of the queue taken, then flushes.
//!
//! Scrubbing rule (used by the `redact` plugin): for the fields `path`, `query`, `client_ip`,
//! `consumer`, `user_agent` and `referer`, when the request context has the key
//! `access_log.<field>`, the line shows that value instead of the raw one.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{AccessLogDestination, AccessLogSettings};

mod line;

pub use line::{AccessRecord, Outcome};

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

/// Longest a line waits in the queue before it is written (and flushed).
pub const WRITE_EVERY: Duration = Duration::from_millis(100);

/// The sending side of the access log. Cheap to share; the writer thread ends when every clone
/// is dropped (after writing what was queued).
#[derive(Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<Vec<u8>>,
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

    /// Queue a line ([`AccessRecord::line`]); never waits. A full queue drops the line and
    /// counts it.
    pub fn send(&self, line: Vec<u8>) {
        let sent = self.tx.try_send(line);
        if self.tx.max_capacity() - self.tx.capacity() >= self.wake_at {
            self.writer.unpark();
        }
        if sent.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("tollgate_access_log_dropped_total").increment(1);
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer: every [`WRITE_EVERY`] (or when unparked), the queued lines (serialized by the
/// workers), then a flush; ends when every sender is gone and the queue is empty.
fn write_lines(mut rx: mpsc::Receiver<Vec<u8>>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    let mut failed = false;
    loop {
        std::thread::park_timeout(WRITE_EVERY);
        let mut wrote = false;
        let closed = loop {
            match rx.try_recv() {
                Ok(line) => {
                    let result = out.write_all(&line);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
