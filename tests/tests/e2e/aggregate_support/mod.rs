//! Shared helpers for the `aggregate_*` scenarios: upstreams that answer fixed JSON (after an
//! optional delay) and count their requests, and a gateway whose only route goes through one
//! `aggregate` plugin entry.

#![allow(dead_code, clippy::unwrap_used)] // each scenario uses a part; a failed unwrap fails the test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use tollgate_tests::{Gateway, Reply, Upstream};

/// An upstream that answers with a fixed status, content type and body after `delay`, and
/// counts the requests it received.
pub struct Fixed {
    /// The running upstream.
    pub upstream: Upstream,
    /// Requests received so far.
    pub hits: Arc<AtomicUsize>,
}

impl Fixed {
    /// `200 application/json` with `body`.
    pub async fn json(body: serde_json::Value) -> Self {
        Self::start(200, "application/json", body.to_string(), Duration::ZERO).await
    }

    /// Like [`Fixed::json`], after `delay`.
    pub async fn slow_json(body: serde_json::Value, delay: Duration) -> Self {
        Self::start(200, "application/json", body.to_string(), delay).await
    }

    /// Any status, content type and body.
    pub async fn start(
        status: u16,
        content_type: &'static str,
        body: String,
        delay: Duration,
    ) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let body = Bytes::from(body);
        let upstream = Upstream::start(Arc::new(move |_req| {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Response::builder()
                    .status(status)
                    .header("content-type", content_type)
                    .body(Full::new(body))
                    .unwrap()
            })
        }))
        .await;
        Self { upstream, hits }
    }

    /// `host:port`.
    pub fn target(&self) -> String {
        self.upstream.target()
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A gateway with these upstreams (`(name, target)`), an `aggregate` entry named `agg` allowed
/// to fetch from `fetch`, configured by the TOML body of `[plugins.agg.config]`, and one route
/// for every path through `before` plugins (TOML of their entries, named in `chain_before`) and
/// then `agg`. `extra` is appended to the config as is (limits, admin, more upstreams).
pub async fn gateway(
    upstreams: &[(&str, String)],
    fetch: &[&str],
    agg_config: &str,
    before: (&str, &[&str]),
    extra: &str,
) -> Gateway {
    Gateway::start(&config(upstreams, fetch, agg_config, before, extra)).await
}

/// The config text of [`gateway`].
pub fn config(
    upstreams: &[(&str, String)],
    fetch: &[&str],
    agg_config: &str,
    before: (&str, &[&str]),
    extra: &str,
) -> String {
    let mut text = String::from(
        "[gateway]\ncache_dir = \"{cache}\"\nwatch = false\n\n[[listeners]]\naddr = \"127.0.0.1:0\"\n\n",
    );
    for (name, target) in upstreams {
        text.push_str(&format!(
            "[upstreams.{name}]\ntargets = [\"{target}\"]\nconnect_timeout_ms = 500\n\n"
        ));
    }
    let quoted: Vec<String> = fetch.iter().map(|f| format!("\"{f}\"")).collect();
    text.push_str(&format!(
        // A 20 ms CPU deadline: the backends' wait must not count against it.
        "[plugins.agg]\nmodule = \"{{plugins}}/aggregate.wasm\"\ntimeout_ms = 20\nfetch = [{}]\n\n\
         [plugins.agg.config]\n{agg_config}\n\n",
        quoted.join(", ")
    ));
    let (before_entries, before_names) = before;
    text.push_str(before_entries);
    text.push('\n');
    let mut chain: Vec<String> = before_names.iter().map(|n| format!("\"{n}\"")).collect();
    chain.push("\"agg\"".to_owned());
    text.push_str(&format!(
        "[[routes]]\nname = \"api\"\npath_prefix = \"/\"\nupstream = \"{}\"\nchain = [{}]\n\n",
        upstreams[0].0,
        chain.join(", ")
    ));
    text.push_str(extra);
    text
}

/// The body as text, for assertion messages.
pub fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}
