//! An operator opens the dashboard's routes page: each route of the current revision with its
//! chain in order (request phase →, response phase ← with only the plugins that have one), and
//! each plugin's live figures from a following gateway's reports after real traffic.

use std::time::{Duration, Instant};

use http::Method;
use tollgate_tests::{Upstream, get};

use crate::developers_choose_their_plan::QUOTA_CONFIG;
use crate::portal_refuses_forgery_fixation_and_xss::{Browser, text};
use crate::support::{ControlPlane, Database, Node, apply};

/// The number in the `calls` cell of the plugin's row in the plugins table.
fn calls_of(page: &str, plugin: &str) -> u64 {
    let row = page
        .find(&format!("<th scope=\"row\">{plugin}</th>"))
        .unwrap_or_else(|| panic!("no row for {plugin}:\n{page}"));
    let rest = &page[row..];
    let at = rest.find("class=\"calls\">").expect("a calls cell") + 14;
    rest[at..].split('<').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_show_their_chains_and_the_plugins_live_figures() {
    let upstream = Upstream::echo("app").await;
    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let operator = cp.token("ops", "operator").await;
    let viewer = cp.token("auditor", "viewer").await;
    let node_token = cp.token("fleet", "node").await;
    let dir = tempfile::tempdir().unwrap();
    // `stamp` is the one plugin with a response phase (quota asks for its headers through the
    // request context, so it has none).
    let config = tollgate_tests::expand(QUOTA_CONFIG)
        .replace("UPSTREAM", &upstream.target())
        .replace(
            r#"chain = ["auth", "quota", "meter"]"#,
            r#"chain = ["auth", "quota", "meter", "stamp"]"#,
        )
        + "\n[plugins.stamp]\nmodule = \"headers\"\n[plugins.stamp.config]\nresponse.set = { \"x-stamp\" = \"1\" }\n"
        + "\n[[routes]]\nname = \"open\"\npath = \"/health\"\nupstream = \"app\"\n";
    apply(&cp, &operator, dir.path(), &config, "routes");
    let node = Node::start(&cp, &node_token, "gw-routes");
    let body = serde_json::json!({"name": "ada", "roles": ["user"], "plan": "big"});
    assert_eq!(
        cp.api(Method::POST, "/v1/consumers", &operator, Some(body))
            .await
            .status,
        201
    );
    let key = cp
        .api(Method::POST, "/v1/consumers/ada/keys", &operator, None)
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    let mut ok = 0;
    while ok < 5 {
        if get(&node.url("/things"), &[("x-api-key", &key)])
            .await
            .status
            == 200
        {
            ok += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the key never worked"
        );
    }
    // A key change wakes the gateway, which then reports its figures.
    let poke = serde_json::json!({"name": "poke"});
    cp.api(Method::POST, "/v1/consumers", &operator, Some(poke))
        .await;
    cp.api(Method::POST, "/v1/consumers/poke/keys", &operator, None)
        .await;
    let started = Instant::now();
    loop {
        let gateways = cp
            .api(Method::GET, "/v1/gateways", &operator, None)
            .await
            .json();
        let calls = gateways[0]["report"]["plugins"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "quota"))
            .and_then(|p| p["calls"].as_u64())
            .unwrap_or(0);
        if calls >= 5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no figures: {gateways}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut b = Browser::new(&cp);
    let r = b
        .submit(
            "/dashboard/signin",
            "/dashboard/signin",
            &[("token", &viewer)],
        )
        .await;
    assert_eq!(r.status, 303);
    let fleet = text(&b.get("/dashboard").await);
    assert!(fleet.contains("href=\"/dashboard/routes\""), "nav link");
    let r = b.get("/dashboard/routes").await;
    assert_eq!(r.status, 200);
    let page = text(&r);
    // Request phase in chain order, then the upstream.
    let request = page
        .find("aria-label=\"Request phase of api\"")
        .expect("request phase");
    let response = page
        .find("aria-label=\"Response phase of api\"")
        .expect("response phase");
    let out = &page[request..response];
    let order: Vec<usize> = ["<li>auth", "<li>quota", "<li>meter", "<li>upstream"]
        .iter()
        .map(|p| out.find(p).unwrap_or_else(|| panic!("{p} not in {out}")))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "order {order:?}: {out}"
    );
    // Coming back: only `stamp` has a response phase.
    let back = &page[response..];
    let back = &back[..back.find("</ol>").unwrap()];
    assert!(back.contains("<li>stamp</li>"), "{back}");
    for plugin in ["auth", "quota", "meter"] {
        assert!(
            !back.contains(&format!("<li>{plugin}</li>")),
            "{plugin} has no response phase: {back}"
        );
    }
    // The open route has no chain.
    assert!(
        page.contains("no plugins: straight to the upstream"),
        "{page}"
    );
    for plugin in ["auth", "quota", "meter"] {
        let calls = calls_of(&page, plugin);
        assert!(calls >= 5, "{plugin}: {calls} calls (one a request)");
        println!("{plugin}: {calls} calls");
    }
    assert!(page.contains("Version (SHA-256)"));
}
