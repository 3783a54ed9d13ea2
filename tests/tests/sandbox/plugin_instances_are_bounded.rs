//! One slow plugin cannot take every instance slot: past its `max_instances` a call waits
//! briefly, then fails 503 `unavailable` naming the plugin, while other plugins keep serving.

use std::time::Duration;

use tollgate_tests::{Upstream, get};

use crate::sandbox_support::gateway;

#[tokio::test]
async fn a_slow_plugin_is_capped_at_max_instances() {
    let upstream = Upstream::echo("up").await;
    let slow = Upstream::slow("slow", Duration::from_millis(600)).await;
    let gateway = gateway(
        &upstream,
        &format!(
            r#"
[upstreams.slow]
targets = ["{slow}"]

[plugins.slow-fetch]
module = "{{fixtures}}/fetcher.wasm"
pool_size = 1
max_instances = 2
fetch = ["slow"]
config = {{ upstream = "slow" }}

[plugins.other]
module = "{{fixtures}}/recorder.wasm"
config = {{ name = "other" }}

[[routes]]
name = "slow"
path_prefix = "/slow"
upstream = "up"
chain = ["slow-fetch"]

[[routes]]
name = "other"
path_prefix = "/other"
upstream = "up"
chain = ["other"]
"#,
            slow = slow.target()
        ),
    )
    .await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let url = gateway.url("/slow");
            tokio::spawn(async move { get(&url, &[]).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Meanwhile another plugin is unaffected.
    assert_eq!(get(&gateway.url("/other"), &[]).await.status, 200);
    let mut ok = 0;
    let mut unavailable = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status.as_u16() {
            200 => ok += 1,
            503 => {
                let body = reply.json();
                assert_eq!(body["plugin"], "slow-fetch");
                assert_eq!(body["kind"], "unavailable");
                unavailable += 1;
            }
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    }
    assert_eq!(ok, 2, "{unavailable} unavailable");
    assert_eq!(unavailable, 4);
}
