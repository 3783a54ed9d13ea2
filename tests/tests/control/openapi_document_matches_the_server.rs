//! The OpenAPI document (`GET /v1/openapi.json`, the one docs/control-plane.md points to) is
//! checked against the real server: every documented operation exists (never the server's 404
//! "no such route" or 405), answers a status the document lists for it, and the server has no
//! route the document leaves out among those tried.

use http::Method;

use crate::support::{ADMIN, ControlPlane, Database};

#[tokio::test]
async fn every_documented_operation_exists_and_answers_a_documented_status() {
    let db = Database::sqlite();
    let cp = ControlPlane::start(&db);
    let doc = tollgate_tests::get(&format!("{}/v1/openapi.json", cp.url()), &[])
        .await
        .json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{} paths", paths.len());
    let mut checked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let concrete = path
                .replace("{id}", "1")
                .replace("{a}", "1")
                .replace("{b}", "1")
                .replace("{name}", "nobody")
                .replace("{action}", "revoke")
                .replace("{sha256}", &"0".repeat(64));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = cp
                .api(m.clone(), &concrete, ADMIN, Some(serde_json::json!({})))
                .await;
            let status = r.status.as_u16().to_string();
            if r.status == 404 {
                let message = r.json()["message"].as_str().unwrap_or("").to_owned();
                assert!(
                    !message.contains("no such route"),
                    "{method} {path}: undocumented in the server"
                );
            }
            assert_ne!(r.status, 405, "{method} {path}: method not served");
            assert!(
                op["responses"].get(&status).is_some(),
                "{method} {concrete} answered {status}, not documented: {}",
                String::from_utf8_lossy(&r.body)
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} operations");
    let r = cp.api(Method::GET, "/v1/nothing-here", ADMIN, None).await;
    assert_eq!(r.status, 404);
}
