//! `transform` translates formats: a form-urlencoded request body reaches a JSON upstream as
//! JSON, a JSON request body reaches a form upstream as a form, and a legacy upstream's XML
//! response reaches the client as JSON. Broken or hostile XML (a DTD with entities) is refused
//! with 502 instead of being passed on or expanded.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use http_body_util::Full;
use serde_json::json;
use tollgate_tests::{Gateway, Upstream, client, send};

fn config(echo: &str, legacy: &str) -> String {
    format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.echo]
targets = ["{echo}"]

[upstreams.legacy]
targets = ["{legacy}"]

[plugins.form-in]
module = "{{plugins}}/transform.wasm"
config = {{ request.body = {{ convert = "form-to-json" }} }}

[plugins.form-out]
module = "{{plugins}}/transform.wasm"
config = {{ request.body = {{ convert = "json-to-form" }} }}

[plugins.xml]
module = "{{plugins}}/transform.wasm"
[plugins.xml.config.response.body]
convert = "xml-to-json"
json = [{{ op = "unwrap", key = "order" }}]

[[routes]]
name = "form-in"
path_prefix = "/form-in"
upstream = "echo"
chain = ["form-in"]

[[routes]]
name = "form-out"
path_prefix = "/form-out"
upstream = "echo"
chain = ["form-out"]

[[routes]]
name = "legacy"
path_prefix = "/legacy"
upstream = "legacy"
chain = ["xml"]
"#
    )
}

async fn legacy() -> Upstream {
    Upstream::start(Arc::new(|req| {
        Box::pin(async move {
            let accept_encoding = req.headers().get("accept-encoding").is_some();
            let xml = match req.uri().path() {
                "/legacy/broken" => "<order><item></order>".to_owned(),
                "/legacy/bomb" => concat!(
                    r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaa">"#,
                    r#"<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><order>&b;</order>"#
                )
                .to_owned(),
                _ => format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<order id="7" accept-encoding-seen="{accept_encoding}">
  <item sku="a-1">2</item>
  <item sku="b-2">1</item>
  <note><![CDATA[ring & leave]]></note>
</order>"#
                ),
            };
            Response::builder()
                .header("content-type", "text/xml; charset=utf-8")
                .body(Full::new(Bytes::from(xml)))
                .unwrap()
        })
    }))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn form_bodies_become_json_and_back() {
    let echo = Upstream::echo("echo").await;
    let legacy = legacy().await;
    let gateway = Gateway::start(&config(&echo.target(), &legacy.target())).await;

    let reply = send(
        &client(),
        Method::POST,
        &gateway.url("/form-in"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "name=Ann+Lee&tag=a&tag=b&city=K%C3%B6ln",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let echo_json = reply.json();
    assert_eq!(echo_json["headers"]["content-type"][0], "application/json");
    let sent: serde_json::Value =
        serde_json::from_str(echo_json["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({ "name": "Ann Lee", "tag": ["a", "b"], "city": "Köln" })
    );
    let length = echo_json["body"].as_str().unwrap().len().to_string();
    assert_eq!(echo_json["headers"]["content-length"][0], length.as_str());

    let reply = send(
        &client(),
        Method::POST,
        &gateway.url("/form-out"),
        &[("content-type", "application/json")],
        json!({ "name": "Ann Lee", "n": 3, "tags": ["a", "b"] }).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let echo_json = reply.json();
    assert_eq!(
        echo_json["headers"]["content-type"][0],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(echo_json["body"], "n=3&name=Ann+Lee&tags=a&tags=b");
    assert_eq!(echo_json["headers"]["content-length"][0], "30");

    // Nested JSON has no form encoding: refused before the upstream.
    let reply = send(
        &client(),
        Method::POST,
        &gateway.url("/form-out"),
        &[("content-type", "application/json")],
        r#"{"a":{"b":1}}"#,
    )
    .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_body");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn xml_responses_become_json() {
    let echo = Upstream::echo("echo").await;
    let legacy = legacy().await;
    let gateway = Gateway::start(&config(&echo.target(), &legacy.target())).await;

    let reply = send(
        &client(),
        Method::GET,
        &gateway.url("/legacy/order"),
        &[("accept-encoding", "gzip")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    assert_eq!(
        reply.json(),
        json!({
            "@id": "7",
            "@accept-encoding-seen": "false",
            "item": [{ "@sku": "a-1", "#text": "2" }, { "@sku": "b-2", "#text": "1" }],
            "note": "ring & leave",
        })
    );

    for path in ["/legacy/broken", "/legacy/bomb"] {
        let reply = send(&client(), Method::GET, &gateway.url(path), &[], "").await;
        assert_eq!(reply.status, 502, "{path}: {:?}", reply.body);
        let body = reply.json();
        assert_eq!(body["error"], "bad_upstream_body", "{path}");
        assert_eq!(body["plugin"], "transform", "{path}");
    }
    gateway.shutdown().await;
}
