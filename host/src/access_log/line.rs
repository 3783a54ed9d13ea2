//! One access-log line: what the gateway keeps of a request from its arrival ([`AccessRecord`]:
//! the client's own values, held by reference count or copied, never turned into strings), and
//! the JSON line written from it and the exchange's [`Outcome`] when the response is done. The
//! line is serialized on the worker that served the request, into one buffer: no string per
//! field is allocated here and freed by the writer thread.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, Request, Uri};
use serde::{Serialize, Serializer};

use super::{CONTEXT_PREFIX, mask_query};

/// Room for an RFC 3339 time with nanoseconds (`2026-12-06T12:00:00.123456789Z` is 30 bytes).
const TIMESTAMP_ROOM: usize = 48;

/// A line's usual length, reserved up front so the buffer is allocated once.
const LINE_CAPACITY: usize = 512;

/// The request as the client sent it, kept for its access-log line.
#[derive(Debug)]
pub struct AccessRecord {
    arrived: time::OffsetDateTime,
    request_id: Arc<str>,
    trace_id: [u8; 32],
    method: Method,
    uri: Uri,
    /// The query with its secret parameters masked, when it had any; otherwise the URI's own.
    masked_query: Option<String>,
    client_ip: IpAddr,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
}

/// How the exchange ended: what the line adds to the record.
#[derive(Debug, Default)]
pub struct Outcome<'a> {
    /// The matched route; `None` when none matched.
    pub route: Option<&'a str>,
    /// The context key `consumer` after the chain.
    pub consumer: Option<&'a str>,
    /// Status sent to the client.
    pub status: u16,
    /// Request body bytes received.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
    /// Whole exchange, arrival to last body byte, in milliseconds.
    pub duration_ms: f64,
    /// Time waiting for the upstream's response head, in milliseconds.
    pub upstream_ms: Option<f64>,
    /// The upstream's name in the config.
    pub upstream: Option<&'a str>,
    /// The target (`host:port`) that served it.
    pub upstream_target: Option<&'a str>,
}

impl AccessRecord {
    /// Keep what the line needs of `req` as it arrived: `client_ip` is the address after the
    /// trusted-proxy rule; API keys in the query (`secret_params`) never reach the log file.
    pub fn new<B>(
        req: &Request<B>,
        request_id: Arc<str>,
        trace_id: [u8; 32],
        client_ip: IpAddr,
        secret_params: &[String],
    ) -> Self {
        let masked_query = req
            .uri()
            .query()
            .map(|q| mask_query(q, secret_params))
            .and_then(|q| match q {
                Cow::Owned(masked) => Some(masked),
                Cow::Borrowed(_) => None,
            });
        Self {
            arrived: time::OffsetDateTime::now_utc(),
            request_id,
            trace_id,
            method: req.method().clone(),
            uri: req.uri().clone(),
            masked_query,
            client_ip,
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
            referer: req.headers().get(http::header::REFERER).cloned(),
        }
    }

    /// The JSON line, newline included. `overrides` is the request context's `access_log.*`
    /// keys: for `path`, `query`, `client_ip`, `consumer`, `user_agent` and `referer`, the
    /// plugins' value replaces the raw one (the `redact` plugin scrubs lines this way).
    pub fn line(&self, outcome: &Outcome<'_>, overrides: &HashMap<String, String>) -> Vec<u8> {
        let mut timestamp = [0u8; TIMESTAMP_ROOM];
        let written = {
            let mut out = &mut timestamp[..];
            let rfc3339 = &time::format_description::well_known::Rfc3339;
            // What is left of the slice says how much was written: the count `format_into`
            // returns leaves out the fraction's digits (time 0.3.55's RFC 3339 formatter).
            match self.arrived.format_into(&mut out, rfc3339) {
                Ok(_) => TIMESTAMP_ROOM - out.len(),
                Err(_) => 0,
            }
        };
        let mut line = Line {
            timestamp: std::str::from_utf8(timestamp.get(..written).unwrap_or_default())
                .unwrap_or_default(),
            request_id: &self.request_id,
            trace_id: std::str::from_utf8(&self.trace_id).unwrap_or_default(),
            route: outcome.route,
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.masked_query.as_deref().or(self.uri.query()),
            client_ip: Text::Ip(self.client_ip),
            consumer: outcome.consumer,
            user_agent: self.user_agent.as_ref().map(header_text),
            referer: self.referer.as_ref().map(header_text),
            status: outcome.status,
            request_bytes: outcome.request_bytes,
            response_bytes: outcome.response_bytes,
            duration_ms: outcome.duration_ms,
            upstream_ms: outcome.upstream_ms,
            upstream: outcome.upstream,
            upstream_target: outcome.upstream_target,
        };
        line.apply(overrides);
        let mut out = Vec::with_capacity(LINE_CAPACITY);
        // A struct of strings and numbers always serializes; the fallback keeps a line anyway.
        if serde_json::to_writer(&mut out, &line).is_err() {
            out.clear();
            out.extend_from_slice(b"{}");
        }
        out.push(b'\n');
        out
    }
}

/// A header value as text: borrowed when it is UTF-8 (almost always); invalid bytes become
/// U+FFFD.
fn header_text(value: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}

/// One line as written, field order included (operators' parsers may rely on it).
#[derive(Serialize)]
struct Line<'a> {
    timestamp: &'a str,
    request_id: &'a str,
    trace_id: &'a str,
    route: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    client_ip: Text<'a>,
    consumer: Option<&'a str>,
    user_agent: Option<Cow<'a, str>>,
    referer: Option<Cow<'a, str>>,
    status: u16,
    request_bytes: u64,
    response_bytes: u64,
    duration_ms: f64,
    upstream_ms: Option<f64>,
    upstream: Option<&'a str>,
    upstream_target: Option<&'a str>,
}

impl<'a> Line<'a> {
    /// The plugins' overrides. Walks the context's `access_log.*` keys, which are usually none.
    fn apply(&mut self, overrides: &'a HashMap<String, String>) {
        for (key, value) in overrides {
            let Some(field) = key.strip_prefix(CONTEXT_PREFIX) else {
                continue;
            };
            let value = value.as_str();
            match field {
                "path" => self.path = value,
                "query" => self.query = Some(value),
                "client_ip" => self.client_ip = Text::Str(value),
                "consumer" => self.consumer = Some(value),
                "user_agent" => self.user_agent = Some(Cow::Borrowed(value)),
                "referer" => self.referer = Some(Cow::Borrowed(value)),
                _ => {}
            }
        }
    }
}

/// A field that is text or an address written as text without a string of its own.
enum Text<'a> {
    Str(&'a str),
    Ip(IpAddr),
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Str(text) => serializer.serialize_str(text),
            Self::Ip(ip) => serializer.collect_str(ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::OVERRIDABLE;
    use super::*;

    fn record(uri: &str, secrets: &[String]) -> AccessRecord {
        let req = Request::post(uri)
            .header("user-agent", "ops-test/1.0")
            .header(
                "referer",
                HeaderValue::from_bytes(b"caf\xe9").unwrap_or(HeaderValue::from_static("x")),
            )
            .body(())
            .unwrap_or_default();
        AccessRecord::new(
            &req,
            Arc::from("req-1"),
            [b'a'; 32],
            IpAddr::from([203, 0, 113, 7]),
            secrets,
        )
    }

    fn parse(line: &[u8]) -> serde_json::Value {
        assert_eq!(line.last(), Some(&b'\n'));
        serde_json::from_slice(line).unwrap_or_default()
    }

    #[test]
    fn a_line_holds_the_request_and_its_outcome() {
        let outcome = Outcome {
            route: Some("r"),
            consumer: Some("alice"),
            status: 201,
            request_bytes: 5,
            response_bytes: 7,
            duration_ms: 1.5,
            upstream_ms: Some(0.5),
            upstream: Some("u"),
            upstream_target: Some("127.0.0.1:9"),
        };
        let line = record("/items?x=1&y=2", &[]).line(&outcome, &HashMap::new());
        let v = parse(&line);
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["trace_id"], "a".repeat(32));
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/items");
        assert_eq!(v["query"], "x=1&y=2");
        assert_eq!(v["client_ip"], "203.0.113.7");
        assert_eq!(v["user_agent"], "ops-test/1.0");
        assert_eq!(v["referer"], "caf\u{fffd}");
        assert_eq!(v["route"], "r");
        assert_eq!(v["consumer"], "alice");
        assert_eq!(v["status"], 201);
        assert_eq!(v["upstream_target"], "127.0.0.1:9");
        let ts = v["timestamp"].as_str().unwrap_or_default();
        assert!(ts.ends_with('Z'), "{ts}");
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        assert!(time::OffsetDateTime::parse(ts, rfc3339).is_ok(), "{ts}");
        let keys: Vec<&str> = v
            .as_object()
            .map_or(Vec::new(), |o| o.keys().map(String::as_str).collect());
        assert_eq!(keys.len(), 18, "{keys:?}");
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        let secrets = vec!["token".to_owned()];
        let line = record("/a?token=s3&b=2", &secrets).line(&Outcome::default(), &HashMap::new());
        assert_eq!(parse(&line)["query"], "token=***&b=2");
    }

    #[test]
    fn every_overridable_field_is_applied_and_nothing_else() {
        for field in OVERRIDABLE {
            let overrides =
                HashMap::from([(format!("{CONTEXT_PREFIX}{field}"), "masked".to_owned())]);
            let line = record("/a?q=1", &[]).line(&Outcome::default(), &overrides);
            assert_eq!(parse(&line)[field], "masked", "{field} was not overridden");
        }
        let overrides = HashMap::from([
            ("access_log.method".to_owned(), "NOPE".to_owned()),
            ("consumer".to_owned(), "bob".to_owned()),
        ]);
        let line = parse(&record("/a", &[]).line(&Outcome::default(), &overrides));
        assert_eq!(line["method"], "POST");
        assert_eq!(line["consumer"], serde_json::Value::Null);
    }
}
