//! The plugin's imports besides the request and response: per-request context, shared state,
//! log, metrics, clock and the allow-listed `http-client`.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::time::{Duration, Instant};

use super::bindings::tollgate::plugin::{
    clock, context, http_client, log, metrics as wit_metrics, state,
};
use super::host_state::HostState;
use super::limits::{Limit, exceeded, truncate};
use super::metric_handles::Handle;
use super::state::{StateError, TokenBucket};
use crate::chain::{FetchRequest, FetchResponse};

/// The context's first allocation: keys, before it grows.
const CONTEXT_CAPACITY: usize = 8;

/// Most labels a plugin may attach to one metric (beyond them, labels are dropped).
const MAX_LABELS: usize = 8;

impl context::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .current_request()
            .and_then(|r| r.context.get(&key).cloned()))
    }

    /// Past the per-request caps the call fails (500 naming the plugin): the contract's `set`
    /// has no error to return, and silently dropping a value (a consumer, a role) is worse.
    fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        let (max_keys, max_bytes) = (self.limits.max_context_keys, self.limits.max_context_bytes);
        let Some(req) = self.current_request() else {
            return Ok(());
        };
        let old = req.context.get(&key).map(|v| key.len() + v.len());
        let keys = req.context.len() + usize::from(old.is_none());
        let bytes: usize = req
            .context
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            - old.unwrap_or(0)
            + key.len()
            + value.len();
        if keys > max_keys || bytes > max_bytes {
            let message =
                format!("context limit: at most {max_keys} keys and {max_bytes} bytes per request");
            return Err(self.violate(Limit::Context, message));
        }
        if req.context.capacity() == 0 {
            // Room for the keys a policy chain sets (identity, plan, quotas), without regrowing.
            req.context.reserve(CONTEXT_CAPACITY);
        }
        req.context.insert(key, value);
        Ok(())
    }

    fn remove(&mut self, key: String) -> wasmtime::Result<()> {
        if let Some(req) = self.current_request() {
            req.context.remove(&key);
        }
        Ok(())
    }
}

fn ttl(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

impl HostState {
    /// Finish a state call: its wait is host I/O, not guest CPU (credited back to the deadline),
    /// and a backend failure is remembered for the plugin's `on_state_error` policy.
    pub(super) fn state_done<T>(
        &mut self,
        started: Instant,
        result: Result<T, StateError>,
    ) -> Result<T, String> {
        self.host_wait += started.elapsed();
        result.map_err(|e| {
            let message = e.to_string();
            if e.is_backend() && self.state_error.is_none() {
                self.state_error = Some(message.clone());
            }
            message
        })
    }

    /// The namespaced key, or the error for a key past the cap.
    pub(super) fn state_key(&self, key: &str) -> Result<String, String> {
        if key.len() > self.limits.max_state_key_bytes {
            exceeded(&self.plugin, Limit::StateKey);
            return Err(format!(
                "state key too long: at most {} bytes",
                self.limits.max_state_key_bytes
            ));
        }
        // `concat` allocates once at the final size; `format!` goes through the formatter.
        Ok([&*self.plugin, ":", key].concat())
    }
}

impl state::Host for HostState {
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        let started = Instant::now();
        let result = self
            .state
            .incr(&self.state_key(&key)?, delta, ttl(ttl_ms))
            .await;
        self.state_done(started, result)
    }

    async fn get_counter(&mut self, key: String) -> Result<i64, String> {
        let started = Instant::now();
        let result = self.state.get_counter(&self.state_key(&key)?).await;
        self.state_done(started, result)
    }

    async fn get(&mut self, key: String) -> Result<Option<String>, String> {
        let started = Instant::now();
        let result = self.state.get(&self.state_key(&key)?).await;
        self.state_done(started, result)
    }

    async fn set(&mut self, key: String, value: String, ttl_ms: u64) -> Result<(), String> {
        let key = self.state_key(&key)?;
        if value.len() > self.limits.max_state_value_bytes {
            exceeded(&self.plugin, Limit::StateValue);
            return Err(format!(
                "state value too large: at most {} bytes",
                self.limits.max_state_value_bytes
            ));
        }
        let started = Instant::now();
        let result = self.state.set(&key, &value, ttl(ttl_ms)).await;
        self.state_done(started, result)
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        let started = Instant::now();
        let result = self.state.delete(&self.state_key(&key)?).await;
        self.state_done(started, result)
    }

    async fn take(
        &mut self,
        key: String,
        capacity: u32,
        refill_per_second: f64,
        cost: u32,
        max_wait_ms: u64,
    ) -> Result<state::TakeResult, String> {
        let bucket = TokenBucket::new(capacity, refill_per_second).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let result = self
            .state
            .take(
                &self.state_key(&key)?,
                bucket,
                cost,
                Duration::from_millis(max_wait_ms),
            )
            .await;
        let out = self.state_done(started, result)?;
        Ok(state::TakeResult {
            granted: out.granted,
            wait_ms: out.wait_ms,
            remaining: out.remaining,
            reset_ms: out.reset_ms,
        })
    }
}

impl log::Host for HostState {
    /// Lines longer than the cap are cut (marked `…[truncated]`) and counted.
    fn write(&mut self, level: log::Level, mut message: String) -> wasmtime::Result<()> {
        if truncate(&mut message, self.limits.max_log_bytes) {
            message.push_str("…[truncated]");
            exceeded(&self.plugin, Limit::Log);
        }
        let request_id = self.request_id();
        let request_id: &str = &request_id;
        let plugin: &str = &self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin, request_id, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, request_id, "{message}"),
            log::Level::Info => tracing::info!(plugin, request_id, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, request_id, "{message}"),
            log::Level::Error => tracing::error!(plugin, request_id, "{message}"),
        }
        Ok(())
    }
}

/// `tollgate_custom_<name>` with anything outside `[a-zA-Z0-9_]` replaced by `_`: plugin
/// metrics live in their own namespace, so no plugin can add to or shadow the gateway's own
/// `tollgate_plugin_*` series.
fn metric_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("tollgate_custom_{clean}")
}

fn metric_labels(plugin: &str, labels: &[(String, String)]) -> Vec<::metrics::Label> {
    let mut out = Vec::with_capacity(labels.len().min(MAX_LABELS) + 1);
    out.push(::metrics::Label::new("plugin", plugin.to_owned()));
    out.extend(
        labels
            .iter()
            .filter(|(k, _)| k != "plugin")
            .take(MAX_LABELS)
            .map(|(k, v)| ::metrics::Label::new(k.clone(), v.clone())),
    );
    out
}

impl HostState {
    /// Whether the series `name` + `labels` may be recorded: known, or new and under the
    /// plugin's cap. Refusals are counted, and the value is dropped.
    fn admit_series(&self, name: &str, labels: &[::metrics::Label]) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        for l in labels {
            l.key().hash(&mut h);
            l.value().hash(&mut h);
        }
        let series = h.finish();
        let admitted = match self.shared.metric_series.lock() {
            Ok(mut known) => {
                known.contains(&series)
                    || (known.len() < self.limits.max_metric_series && known.insert(series))
            }
            Err(_) => false,
        };
        if !admitted {
            exceeded(&self.plugin, Limit::MetricSeries);
        }
        admitted
    }
}

impl wit_metrics::Host for HostState {
    fn counter_add(
        &mut self,
        name: String,
        labels: Vec<(String, String)>,
        value: u64,
    ) -> wasmtime::Result<()> {
        if let Some(Handle::Counter(counter)) = self.series(false, name, labels) {
            counter.increment(value);
        }
        Ok(())
    }

    fn histogram_record(
        &mut self,
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    ) -> wasmtime::Result<()> {
        if let Some(Handle::Histogram(histogram)) = self.series(true, name, labels) {
            histogram.record(value);
        }
        Ok(())
    }
}

impl HostState {
    /// The handle of a plugin series: kept by this instance, or made (when the plugin may
    /// create it) in the plugin's own `tollgate_custom_` namespace with its `plugin` label.
    pub(super) fn series(
        &mut self,
        histogram: bool,
        name: String,
        labels: Vec<(String, String)>,
    ) -> Option<Handle> {
        let mut handles = std::mem::take(&mut self.metric_handles);
        let handle = handles.get_or_make(histogram, name, labels, |name, labels| {
            let name = metric_name(name);
            let labels = metric_labels(&self.plugin, labels);
            if !self.admit_series(&name, &labels) {
                return None;
            }
            Some(if histogram {
                Handle::Histogram(::metrics::histogram!(name, labels))
            } else {
                Handle::Counter(::metrics::counter!(name, labels))
            })
        });
        self.metric_handles = handles;
        handle
    }
}

impl clock::Host for HostState {
    fn now_millis(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_millis())
    }

    fn monotonic_nanos(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.monotonic_nanos())
    }
}

/// Most requests one `fetch` call may send; the rest are answered with an error.
const MAX_FETCH_PER_CALL: usize = 32;

impl http_client::Host for HostState {
    async fn fetch(
        &mut self,
        requests: Vec<http_client::OutgoingRequest>,
    ) -> Vec<Result<http_client::IncomingResponse, String>> {
        if self.scope.request.is_none() {
            return requests
                .iter()
                .map(|_| Err("fetch is only available while handling a request".to_owned()))
                .collect();
        }
        let started = Instant::now();
        let max_requests = self.limits.max_fetch_requests;
        let max_bytes = self.limits.max_fetch_bytes;
        let mut refused = false;
        let calls = requests.into_iter().enumerate().map(|(i, r)| {
            let sent = r.body.len() as u64;
            let over = self.fetched.requests >= max_requests
                || self.fetched.bytes.saturating_add(sent) > max_bytes;
            let call: BoxFuture<'static, Result<FetchResponse, String>> = if i >= MAX_FETCH_PER_CALL
            {
                let message = format!("at most {MAX_FETCH_PER_CALL} requests per fetch call");
                Box::pin(async move { Err(message) })
            } else if over {
                refused = true;
                let message = format!(
                    "fetch limit: at most {max_requests} requests and {max_bytes} bytes per request phase"
                );
                Box::pin(async move { Err(message) })
            } else if !self.fetch_allowed.contains(&r.upstream) {
                let message = format!(
                    "upstream `{}` is not in this plugin's `fetch` list",
                    r.upstream
                );
                Box::pin(async move { Err(message) })
            } else {
                self.fetched.requests += 1;
                self.fetched.bytes = self.fetched.bytes.saturating_add(sent);
                match fetch_request(&r) {
                    Ok(req) => self.fetcher.fetch(&r.upstream, req),
                    Err(message) => Box::pin(async move { Err(message) }),
                }
            };
            async move { call.await.map(incoming_response) }
        });
        let calls: Vec<_> = calls.collect();
        let mut answers = futures_util::future::join_all(calls).await;
        // Waiting is not running: the epoch deadline callback credits this time back.
        self.host_wait += started.elapsed();
        for answer in &mut answers {
            if let Ok(response) = answer {
                let received = response.body.len() as u64;
                if self.fetched.bytes.saturating_add(received) > max_bytes {
                    refused = true;
                    *answer = Err(format!(
                        "fetch limit: the responses exceed {max_bytes} bytes per request phase"
                    ));
                } else {
                    self.fetched.bytes += received;
                }
            }
        }
        if refused {
            exceeded(&self.plugin, Limit::Fetch);
        }
        answers
    }
}

/// The guest's request as host types; a bad method or header fails only this request.
fn fetch_request(r: &http_client::OutgoingRequest) -> Result<FetchRequest, String> {
    let method = Method::from_bytes(r.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", r.method))?;
    if !r.path_and_query.starts_with('/') {
        return Err(format!("path `{}` must start with `/`", r.path_and_query));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &r.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header `{name}` is not valid"))?;
        headers.append(name, value);
    }
    Ok(FetchRequest {
        method,
        path_and_query: r.path_and_query.clone(),
        headers,
        body: Bytes::copy_from_slice(&r.body),
        timeout: (r.timeout_ms > 0).then(|| Duration::from_millis(u64::from(r.timeout_ms))),
    })
}

fn incoming_response(r: FetchResponse) -> http_client::IncomingResponse {
    http_client::IncomingResponse {
        status: r.status.as_u16(),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: r.body.to_vec(),
    }
}
