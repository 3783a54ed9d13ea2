//! An operator uploads an API version's OpenAPI document through the control API and developers
//! read it as a reference page in the portal: bad documents are refused with a 400 naming each
//! problem (or 413 past 1 MiB), viewers cannot upload (403), the catalogue links the versions
//! that have a document, and the page shows the operations with their parameters and schemas
//! (`$ref`s followed, a self-referencing schema drawn once). On SQLite and PostgreSQL.

use bytes::Bytes;
use http::Method;
use tollgate_tests::{Reply, client, send};

use crate::portal_refuses_forgery_fixation_and_xss::{Browser, text};
use crate::support::{ADMIN, ControlPlane, Database, apply};

/// A small document for the `api` route: two operations, a parameter, a `$ref`'d schema that
/// refers to itself.
pub const PETS: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "Pet store", "version": "2.1", "description": "Pets, for sale."},
  "servers": [{"url": "https://api.example.com/v2", "description": "production"}],
  "paths": {
    "/pets/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "description": "the pet's id", "schema": {"type": "integer", "format": "int64"}}],
      "get": {
        "summary": "Find a pet by id",
        "responses": {
          "200": {"description": "the pet", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}},
          "404": {"description": "no such pet"}
        }
      },
      "delete": {"summary": "Sell a pet", "deprecated": true, "responses": {"204": {"description": "sold"}}}
    }
  },
  "components": {"schemas": {"Pet": {
    "type": "object", "required": ["name"],
    "properties": {
      "name": {"type": "string", "description": "what it answers to"},
      "status": {"type": "string", "enum": ["available", "sold"]},
      "parent": {"$ref": "#/components/schemas/Pet"}
    }
  }}}
}"##;

/// `PUT /v1/apis/{name}/openapi` with a raw body.
pub async fn put_doc(cp: &ControlPlane, token: &str, name: &str, body: Vec<u8>) -> Reply {
    let auth = format!("Bearer {token}");
    let url = format!("{}/v1/apis/{name}/openapi", cp.url());
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    send(&client(), Method::PUT, &url, &headers, Bytes::from(body)).await
}

fn refused(r: &Reply, status: u16, words: &[&str]) {
    assert_eq!(r.status, status, "{}", text(r));
    let v = r.json();
    let message = v["message"].as_str().unwrap_or_default();
    for w in words {
        assert!(message.contains(w), "{w:?} not in {message}");
    }
}

async fn upload_checks(db: &Database) {
    let cp = ControlPlane::start(db);
    let operator = cp.token("ops", "operator").await;
    let viewer = cp.token("auditor", "viewer").await;
    let r = put_doc(&cp, &viewer, "api", PETS.into()).await;
    refused(&r, 403, &["viewer"]);
    assert_eq!(r.json()["error"], "forbidden");
    let r = put_doc(&cp, &operator, "api", b"{\"openapi\": ".to_vec()).await;
    refused(&r, 400, &["not valid JSON"]);
    let r = put_doc(
        &cp,
        &operator,
        "api",
        b"openapi: 3.0.3\npaths: {}\n".to_vec(),
    )
    .await;
    refused(&r, 400, &["YAML is not accepted"]);
    let r = put_doc(
        &cp,
        &operator,
        "api",
        br#"{"openapi": "2.0", "paths": []}"#.to_vec(),
    )
    .await;
    refused(
        &r,
        400,
        &[
            "`openapi` must be a 3.x",
            "`info` is missing",
            "`paths` must be an object",
        ],
    );
    let r = put_doc(&cp, &operator, "api", br#"{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"pets": {"get": 1}}}"#.to_vec()).await;
    refused(
        &r,
        400,
        &[
            "`paths.pets`: a path must start with `/`",
            "`paths.pets.get` must be an object",
        ],
    );
    let mut big =
        br#"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}, "x": ""#
            .to_vec();
    big.resize((1 << 20) + 10, b'a');
    big.extend_from_slice(b"\"}");
    let r = put_doc(&cp, &operator, "api", big).await;
    refused(&r, 413, &["larger than 1048576 bytes"]);
    assert_eq!(r.json()["error"], "too_large");
    let r = put_doc(&cp, &operator, "bad%21name", PETS.into()).await;
    assert_eq!(r.status, 400, "{}", text(&r));

    let r = put_doc(&cp, &operator, "api", PETS.into()).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["operations"], 2);
    let got = cp
        .api(Method::GET, "/v1/apis/api/openapi", &viewer, None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["info"]["title"], "Pet store");
    let list = cp.api(Method::GET, "/v1/apis", &viewer, None).await.json();
    assert_eq!(list[0]["route"], "api");
    assert_eq!(list[0]["updated_by"], "ops");
    let audit = text(&cp.api(Method::GET, "/v1/audit", ADMIN, None).await);
    assert!(
        audit.contains("apidoc.put") && audit.contains("2 operations"),
        "{audit}"
    );
    let gone = cp
        .api(Method::GET, "/v1/apis/legacy/openapi", &viewer, None)
        .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn documents_are_checked_stored_and_audited_on_sqlite() {
    upload_checks(&Database::sqlite()).await;
}

#[tokio::test]
async fn documents_are_checked_stored_and_audited_on_postgres() {
    upload_checks(&Database::postgres()).await;
}

#[tokio::test]
async fn developers_read_the_rendered_reference_from_the_catalogue() {
    let db = Database::sqlite();
    let cp = ControlPlane::start_with(&db, &["--portal-signup", "open"]);
    let operator = cp.token("ops", "operator").await;
    let dir = tempfile::tempdir().unwrap();
    let config = tollgate_tests::expand(super::portal_in_a_browser::CONFIG)
        .replace("UPSTREAM", "127.0.0.1:9");
    apply(&cp, &operator, dir.path(), &config, "routes");
    assert_eq!(
        put_doc(&cp, &operator, "api", PETS.into()).await.status,
        200
    );

    let mut dev = Browser::new(&cp);
    assert_eq!(dev.sign_up("ada", "Ada").await.status, 303);
    let catalogue = text(&dev.get("/portal").await);
    assert!(
        catalogue.contains("href=\"/portal/apis/api\""),
        "{catalogue}"
    );
    assert!(
        !catalogue.contains("/portal/apis/legacy"),
        "legacy has no document"
    );

    let r = dev.get("/portal/apis/api").await;
    assert_eq!(r.status, 200);
    let page = text(&r);
    for expected in [
        "<title>Pet store 2.1 · Tollgate</title>",
        "Pets, for sale.",
        "https://api.example.com/v2",
        "GET</span> <code>/pets/{id}</code>",
        "DELETE</span> <code>/pets/{id}</code>",
        "Find a pet by id",
        "the pet's id",
        "integer (int64)",
        "what it answers to",
        "available",
        "(Pet)",
        "drawn above",
        "deprecated",
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} not in the page:\n{page}"
        );
    }
    // Schema fields in document order of their names, `required` marked.
    assert!(
        page.contains("<code>name</code> <span class=\"badge warn\">required</span>"),
        "{page}"
    );
    assert_eq!(dev.get("/portal/apis/legacy").await.status, 404);
    // Signed out: the reference is for signed-in developers, like the catalogue.
    assert_eq!(Browser::new(&cp).get("/portal/apis/api").await.status, 303);

    let deleted = cp
        .api(Method::DELETE, "/v1/apis/api/openapi", &operator, None)
        .await;
    assert_eq!(deleted.status, 200);
    assert!(!text(&dev.get("/portal").await).contains("/portal/apis/api"));
    assert_eq!(dev.get("/portal/apis/api").await.status, 404);
}
