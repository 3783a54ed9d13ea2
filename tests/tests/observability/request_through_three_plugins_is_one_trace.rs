//! An operator points `[telemetry]` at their collector: a request that arrives with a
//! `traceparent` and runs through a three-plugin chain shows up as one trace in the caller's
//! trace id: the gateway's server span (the parent the upstream saw), a span per plugin call and a
//! span for the upstream attempt, with the HTTP semantic-convention attributes.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tollgate_tests::{Gateway, Upstream, get};

use super::support::{Receiver, attr, hex};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_through_three_plugins_is_one_trace() {
    let receiver = Receiver::start(Duration::ZERO).await;
    let upstream = Upstream::echo("u").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[telemetry]
endpoint = "{endpoint}"
service_name = "edge-gw"
headers = {{ x-tenant = "acme" }}

[upstreams.u]
targets = ["{target}"]

[plugins.a]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "a" }}

[plugins.b]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "b" }}

[plugins.c]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "c" }}

[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "u"
chain = ["a", "b", "c"]
"#,
        endpoint = receiver.endpoint(),
        target = upstream.target(),
    ))
    .await;

    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let reply = get(
        &gateway.url("/orders/42"),
        &[("traceparent", traceparent.as_str())],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // The span id the upstream was given as its parent.
    let sent = reply.json()["headers"]["traceparent"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sent.starts_with(&format!("00-{TRACE_ID}-")), "{sent}");
    let gateway_span = &sent[36..52];

    // 1 server span, 3 request-phase and 3 response-phase plugin spans, 1 upstream attempt.
    let spans = receiver.wait_for(8, Duration::from_secs(10)).await;
    println!(
        "received {} spans in {} exports",
        spans.len(),
        receiver.exports.lock().unwrap()
    );
    assert_eq!(spans.len(), 8, "{spans:#?}");
    assert!(spans.iter().all(|(service, _)| service == "edge-gw"));
    assert!(spans.iter().all(|(_, s)| hex(&s.trace_id) == TRACE_ID));

    let server: Vec<_> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(server.len(), 1);
    let server = server[0];
    assert_eq!(hex(&server.span_id), gateway_span);
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(server.name, "GET orders");
    assert_eq!(attr(server, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attr(server, "http.route").as_deref(), Some("orders"));
    assert_eq!(attr(server, "url.path").as_deref(), Some("/orders/42"));
    assert_eq!(
        attr(server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(server, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attr(server, "client.address").as_deref(), Some("127.0.0.1"));
    assert!(server.end_time_unix_nano > server.start_time_unix_nano);

    let children: Vec<_> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.span_id != server.span_id)
        .collect();
    assert!(children.iter().all(|s| s.parent_span_id == server.span_id));
    assert!(children.iter().all(|s| {
        s.start_time_unix_nano >= server.start_time_unix_nano
            && s.end_time_unix_nano <= server.end_time_unix_nano
    }));
    let plugin_spans = |phase: &str| -> Vec<String> {
        let mut calls: Vec<_> = children
            .iter()
            .filter(|s| attr(s, "tollgate.plugin.phase").as_deref() == Some(phase))
            .map(|s| {
                (
                    s.start_time_unix_nano,
                    attr(s, "tollgate.plugin.name").unwrap(),
                )
            })
            .collect();
        calls.sort();
        calls.into_iter().map(|(_, name)| name).collect()
    };
    assert_eq!(plugin_spans("request"), ["a", "b", "c"]);
    assert_eq!(plugin_spans("response"), ["c", "b", "a"]);
    for span in children
        .iter()
        .filter(|s| attr(s, "tollgate.plugin.name").is_some())
    {
        assert_eq!(span.kind, SpanKind::Internal as i32);
        assert_eq!(
            attr(span, "tollgate.plugin.outcome").as_deref(),
            Some("continue")
        );
        assert!(attr(span, "tollgate.plugin.instance_reused").is_some());
    }

    let attempts: Vec<_> = children
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    assert_eq!(attempts.len(), 1);
    let attempt = attempts[0];
    assert_eq!(
        attr(attempt, "tollgate.upstream.target"),
        Some(upstream.target())
    );
    assert_eq!(
        attr(attempt, "http.request.resend_count").as_deref(),
        Some("0")
    );
    assert_eq!(
        attr(attempt, "http.response.status_code").as_deref(),
        Some("200")
    );

    // A second request reuses the warm instances, and says so.
    assert_eq!(get(&gateway.url("/orders/43"), &[]).await.status, 200);
    let spans = receiver.wait_for(16, Duration::from_secs(10)).await;
    assert_eq!(spans.len(), 16);
    let reused = spans[8..]
        .iter()
        .filter(|(_, s)| attr(s, "tollgate.plugin.instance_reused").as_deref() == Some("true"))
        .count();
    assert!(reused >= 3, "{reused}");
    gateway.shutdown().await;
}
