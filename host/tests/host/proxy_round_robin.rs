//! An upstream with two targets gets requests in turn.
#![allow(clippy::unwrap_used)]

use crate::proxy_support;

use std::collections::HashMap;

use proxy_support::*;

#[tokio::test]
async fn requests_alternate_between_targets() {
    let one = mock_upstream("one").await;
    let two = mock_upstream("two").await;
    let config = config(
        vec![upstream("pair", &[one, two])],
        vec![prefix("r", "/", "pair")],
    );
    let gateway = Gateway::start(table(&config, HashMap::new())).await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        let answer = get(&gateway.url("/")).await;
        seen.push(answer.json()["upstream"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["one", "two", "one", "two"]);
}
