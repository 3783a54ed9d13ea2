//! A plugin cannot answer with, or set, an informational status (100–199): `101` without an
//! upgrade would break the client's connection. The client gets a 500 naming the plugin (or the
//! upstream's status, when it was `set-status` that failed) and the connection keeps working.

use http::Method;
use tollgate_tests::{Upstream, client, send};

use crate::sandbox_support::{gateway, limit_hits};

const PLUGINS: &str = r#"
[plugins.status-respond]
module = "{fixtures}/abuser.wasm"
config = { mode = "respond-status", status = 101 }

[plugins.status-early]
module = "{fixtures}/abuser.wasm"
config = { mode = "respond-status", status = 103 }

[plugins.status-set]
module = "{fixtures}/abuser.wasm"
config = { mode = "set-status", status = 101 }

[[routes]]
name = "respond"
path_prefix = "/respond"
upstream = "up"
chain = ["status-respond"]

[[routes]]
name = "early"
path_prefix = "/early"
upstream = "up"
chain = ["status-early"]

[[routes]]
name = "set"
path_prefix = "/set"
upstream = "up"
chain = ["status-set"]
"#;

#[tokio::test]
async fn informational_statuses_are_refused() {
    let upstream = Upstream::echo("up").await;
    let gateway = gateway(&upstream, PLUGINS).await;
    // One keep-alive connection for everything: it must survive each refusal.
    let client = client();
    for _ in 0..2 {
        for (path, plugin) in [("/respond", "status-respond"), ("/early", "status-early")] {
            let reply = send(&client, Method::GET, &gateway.url(path), &[], "").await;
            assert_eq!(reply.status, 500, "{path}");
            let body = reply.json();
            assert_eq!(body["plugin"], plugin);
            assert!(
                body["message"].as_str().unwrap().contains("200..=599"),
                "{body}"
            );
        }
        let reply = send(&client, Method::GET, &gateway.url("/set"), &[], "").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .header("x-abuse-error")
                .unwrap_or("")
                .contains("200..=599"),
            "{:?}",
            reply.headers
        );
    }
    assert!(limit_hits(&gateway, "status-respond", "status").await >= 2.0);
    assert!(limit_hits(&gateway, "status-set", "status").await >= 2.0);
}
