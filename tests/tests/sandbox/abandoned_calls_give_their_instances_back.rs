//! A client that goes away while a plugin call waits (on a `fetch`, on Redis) drops the call
//! mid-way. The instance it held is gone, and its slot must be given back: a plugin at its
//! `max_instances` that lost instances this way must keep serving, not answer 503
//! `unavailable` ("all instances are busy") for ever.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tollgate_tests::{Upstream, get};

use crate::sandbox_support::gateway;

#[tokio::test]
async fn clients_that_hang_up_mid_call_do_not_use_up_the_instances() {
    let upstream = Upstream::echo("up").await;
    let slow = Upstream::slow("slow", Duration::from_millis(700)).await;
    let gateway = gateway(
        &upstream,
        &format!(
            r#"
[plugins.slow-fetch]
module = "{{fixtures}}/fetcher.wasm"
pool_size = 1
max_instances = 2
timeout_ms = 5000
fetch = ["slow"]
config = {{ upstream = "slow" }}

[upstreams.slow]
targets = ["{slow}"]

[[routes]]
name = "slow"
path_prefix = "/slow"
upstream = "up"
chain = ["slow-fetch"]
"#,
            slow = slow.target()
        ),
    )
    .await;
    let addr = gateway.url("").trim_start_matches("http://").to_owned();
    // Five clients in turn (more than `max_instances`) each start a request and hang up while
    // the plugin waits on its fetch.
    for _ in 0..5 {
        let mut client = TcpStream::connect(&addr).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: gateway\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        drop(client);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Both slots are usable again: two requests at once are both served.
    let url = gateway.url("/slow");
    let (a, b) = tokio::join!(get(&url, &[]), get(&url, &[]));
    for reply in [a, b] {
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
}
