//! An operator reloads while requests are in flight: they finish on the table they started
//! with, new requests use the new one; shutdown lets in-flight requests finish.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;
use std::time::Duration;

use http::{Method, StatusCode};
use proxy_support::*;

#[tokio::test]
async fn in_flight_requests_finish_on_the_old_table() {
    let old = mock_upstream("old").await;
    let new = mock_upstream("new").await;
    let old_config = config(vec![upstream("up", &[old])], vec![prefix("r", "/", "up")]);
    let new_config = config(vec![upstream("up", &[new])], vec![prefix("r", "/", "up")]);
    let gateway = Gateway::start(table(&old_config, HashMap::new())).await;

    let slow_url = gateway.url("/slow");
    let in_flight = tokio::spawn(async move {
        send(
            &client(),
            request(Method::GET, &slow_url, &[("x-delay-ms", "300")]),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let previous = gateway.proxy.swap(table(&new_config, HashMap::new()));
    assert_eq!(previous.routes().len(), 1);

    let fresh = get(&gateway.url("/fresh")).await;
    assert_eq!(fresh.json()["upstream"], "new");
    let finished = in_flight.await.unwrap();
    assert_eq!(finished.status, StatusCode::OK);
    assert_eq!(finished.json()["upstream"], "old");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let up = mock_upstream("up").await;
    let config = config(vec![upstream("up", &[up])], vec![prefix("r", "/", "up")]);
    let gateway = Gateway::start(table(&config, HashMap::new())).await;
    let addr = gateway.addr;

    let url = gateway.url("/slow");
    let in_flight = tokio::spawn(async move {
        send(
            &client(),
            request(Method::GET, &url, &[("x-delay-ms", "300")]),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    gateway.shutdown().await;
    let finished = in_flight.await.unwrap();
    assert_eq!(finished.status, StatusCode::OK);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}
