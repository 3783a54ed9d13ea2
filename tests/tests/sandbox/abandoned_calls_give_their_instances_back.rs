//! A client that goes away while a plugin call waits (on a `fetch`, on Redis) drops the call
//! mid-way. The instance it held is gone, and its slot must be given back: a plugin at its
//! `max_instances` that lost instances this way must keep serving, not answer 503
//! `unavailable` ("all instances are busy") for ever. A client that goes away while its request
//! waits for an instance holds none, and must not give one back either.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream, get};

use crate::sandbox_support::gateway;

#[tokio::test]
async fn clients_that_hang_up_mid_call_do_not_use_up_the_instances() {
    let (gateway, _upstreams) = slow_fetch_gateway().await;
    let addr = gateway.addr.to_string();
    // Five clients in turn (more than `max_instances`) each start a request and hang up while
    // the plugin waits on its fetch.
    for _ in 0..5 {
        hang_up_after(&addr, Duration::from_millis(150)).await;
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

#[tokio::test]
async fn clients_that_hang_up_while_waiting_for_an_instance_leave_the_count_alone() {
    let (gateway, _upstreams) = slow_fetch_gateway().await;
    let addr = gateway.addr.to_string();
    let url = gateway.url("/slow");
    // Two requests hold both instances (`max_instances = 2`); three more clients wait for one
    // and hang up while waiting.
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&url, &[]).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    for _ in 0..3 {
        hang_up_after(&addr, Duration::from_millis(50)).await;
    }
    for holder in holders {
        assert_eq!(holder.await.unwrap().status, 200);
    }
    // The two instances serve two requests at once again, and no abandoned wait was taken for a
    // lost instance (which would have made the pool create more than `max_instances`).
    let (a, b) = tokio::join!(get(&url, &[]), get(&url, &[]));
    assert_eq!(a.status, 200);
    assert_eq!(b.status, 200);
    let admin = gateway.admin.expect("admin listener");
    let body = get(&format!("http://{admin}/admin/plugins"), &[])
        .await
        .json();
    let plugin = &body["plugins"][0];
    assert_eq!(plugin["instances_created"], 2, "{plugin}");
}

/// A gateway whose route `/slow` runs a plugin (`max_instances = 2`) that fetches from an
/// upstream answering after 700 ms; the upstreams live as long as the returned pair.
async fn slow_fetch_gateway() -> (Gateway, [Upstream; 2]) {
    let upstream = Upstream::echo("up").await;
    let slow = Upstream::slow("slow", Duration::from_millis(700)).await;
    let config = format!(
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
    );
    (gateway(&upstream, &config).await, [upstream, slow])
}

/// Send `GET /slow` on a new connection and close it after `after`.
async fn hang_up_after(addr: &str, after: Duration) {
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /slow HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(after).await;
}
