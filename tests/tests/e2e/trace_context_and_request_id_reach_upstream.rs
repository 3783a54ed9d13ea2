//! A client calls through the gateway: the upstream sees a W3C `traceparent` that continues the
//! client's trace (same trace id, the gateway's span as parent) or starts a new one when the
//! client sent none or a broken one, and an `X-Request-Id` (the client's, or a generated one)
//! that the client gets back.

#![allow(clippy::unwrap_used)]

use tollgate_tests::{Gateway, Reply, Upstream, get};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn seen(reply: &Reply, header: &str) -> Option<String> {
    reply.json()["headers"][header][0]
        .as_str()
        .map(str::to_owned)
}

/// (trace id, parent id, flags) of a well-formed version-00 `traceparent`.
fn parts(traceparent: &str) -> (String, String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[0], "00");
    assert_eq!(fields[1].len(), 32);
    assert_eq!(fields[2].len(), 16);
    assert!(
        traceparent[3..]
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_ne!(fields[1], "0".repeat(32));
    assert_ne!(fields[2], "0".repeat(16));
    (fields[1].into(), fields[2].into(), fields[3].into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_sees_trace_context_and_request_id() {
    let upstream = Upstream::echo("u").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{}"]

[[routes]]
name = "all"
path_prefix = "/"
upstream = "u"
"#,
        upstream.target()
    ))
    .await;

    // 1. Nothing from the client: a new trace and a generated request id, returned to it.
    let a = get(&gateway.url("/a"), &[("tracestate", "vendor=1")]).await;
    assert_eq!(a.status, 200);
    let (trace_a, _, flags) = parts(&seen(&a, "traceparent").unwrap());
    assert_eq!(flags, "01");
    // tracestate belongs to a trace that was not continued.
    assert_eq!(seen(&a, "tracestate"), None);
    let id_a = seen(&a, "x-request-id").unwrap();
    assert_eq!(id_a.len(), 32);
    assert_eq!(a.header("x-request-id"), Some(id_a.as_str()));
    let b = get(&gateway.url("/b"), &[]).await;
    let (trace_b, _, _) = parts(&seen(&b, "traceparent").unwrap());
    assert_ne!(trace_a, trace_b);
    assert_ne!(seen(&b, "x-request-id").unwrap(), id_a);

    // 2. A valid parent: same trace, a new span as parent, flags and tracestate kept.
    let c = get(
        &gateway.url("/c"),
        &[
            ("traceparent", PARENT),
            ("tracestate", "vendor=1"),
            ("x-request-id", "client-id-42"),
        ],
    )
    .await;
    let (trace_c, parent_c, flags_c) = parts(&seen(&c, "traceparent").unwrap());
    assert_eq!(trace_c, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(parent_c, "00f067aa0ba902b7");
    assert_eq!(flags_c, "01");
    assert_eq!(seen(&c, "tracestate").as_deref(), Some("vendor=1"));
    assert_eq!(seen(&c, "x-request-id").as_deref(), Some("client-id-42"));
    assert_eq!(c.header("x-request-id"), Some("client-id-42"));
    let unsampled = PARENT.replace("-01", "-00");
    let d = get(&gateway.url("/d"), &[("traceparent", &unsampled)]).await;
    let (trace_d, _, flags_d) = parts(&seen(&d, "traceparent").unwrap());
    assert_eq!(trace_d, trace_c);
    assert_eq!(flags_d, "00");

    // 3. Broken parents start a new trace.
    for bad in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ] {
        let e = get(&gateway.url("/e"), &[("traceparent", bad)]).await;
        let (trace_e, _, _) = parts(&seen(&e, "traceparent").unwrap());
        assert_ne!(trace_e, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
    }
    // A request id that is not a short printable token is replaced.
    let f = get(&gateway.url("/f"), &[("x-request-id", "has space")]).await;
    let id_f = seen(&f, "x-request-id").unwrap();
    assert_ne!(id_f, "has space");
    assert_eq!(f.header("x-request-id"), Some(id_f.as_str()));
    gateway.shutdown().await;
}

/// Every value the upstream saw for `header`.
fn all_seen(reply: &Reply, header: &str) -> Vec<String> {
    reply.json()["headers"][header]
        .as_array()
        .map(|values| {
            let text = values.iter().filter_map(|v| v.as_str());
            text.map(str::to_owned).collect()
        })
        .unwrap_or_default()
}

/// A plugin may set, add or remove `x-request-id` and `traceparent` in the request it sees, but
/// the upstream always gets the gateway's: one value each, the request id the client gets back and
/// a `traceparent` of the gateway's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_cannot_change_the_ids_the_upstream_sees() {
    let upstream = Upstream::echo("u").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
plugin_dir = "{{plugins}}"
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{}"]

[plugins.set]
module = "headers"
config = {{ request = {{ set = {{ "x-request-id" = "forged", "traceparent" = "{PARENT}" }} }} }}

[plugins.add]
module = "headers"
config = {{ request = {{ add = {{ "x-request-id" = "second", "traceparent" = "{PARENT}" }} }} }}

[plugins.remove]
module = "headers"
config = {{ request = {{ remove = ["x-request-id", "traceparent"] }} }}

[[routes]]
name = "set"
path_prefix = "/set"
upstream = "u"
chain = ["set"]

[[routes]]
name = "add"
path_prefix = "/add"
upstream = "u"
chain = ["add"]

[[routes]]
name = "remove"
path_prefix = "/remove"
upstream = "u"
chain = ["remove"]
"#,
        upstream.target()
    ))
    .await;

    for (path, client_id) in [
        ("/set", None),
        ("/add", Some("client-id-7")),
        ("/remove", None),
        ("/add/x", None),
    ] {
        let sent: Vec<(&str, &str)> = client_id
            .map(|id| ("x-request-id", id))
            .into_iter()
            .collect();
        let reply = get(&gateway.url(path), &sent).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        let ids = all_seen(&reply, "x-request-id");
        assert_eq!(ids.len(), 1, "{path}: {ids:?}");
        assert_eq!(
            reply.header("x-request-id"),
            Some(ids[0].as_str()),
            "{path}"
        );
        match client_id {
            Some(id) => assert_eq!(ids[0], id, "{path}"),
            None => assert_eq!(ids[0].len(), 32, "{path}: {ids:?}"),
        }
        let traceparents = all_seen(&reply, "traceparent");
        assert_eq!(traceparents.len(), 1, "{path}: {traceparents:?}");
        let (trace, _, _) = parts(&traceparents[0]);
        assert_ne!(trace, "4bf92f3577b34da6a3ce929d0e0e4736", "{path}");
    }
    gateway.shutdown().await;
}
