//! `/v1/apis`: the OpenAPI document of each API version (a route of the config, by name).
//! Admins and operators upload (`PUT`, at most [`MAX_DOC_BYTES`], checked by `openapi_doc`) and
//! delete; every management role reads. The developer portal renders them (`portal::reference`).

use http::{Method, StatusCode};
use hyper::body::Incoming;

use super::Control;
use super::http::{Answer, ApiError, bytes, json, read_body};
use super::ops::check_name;
use super::roles::{Caller, Need};

/// Largest document accepted.
pub const MAX_DOC_BYTES: usize = 1 << 20;

/// `GET /v1/apis`.
pub async fn list(ctl: &Control, caller: &Caller) -> Result<Answer, ApiError> {
    caller.role.check(Need::Read, "read API documents")?;
    Ok(json(StatusCode::OK, &ctl.store.api_docs().await?))
}

/// `GET`, `PUT` or `DELETE /v1/apis/{name}/openapi`.
pub async fn document(
    ctl: &Control,
    caller: &Caller,
    method: Method,
    name: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    match method {
        Method::GET => {
            caller.role.check(Need::Read, "read API documents")?;
            match ctl.store.api_doc(name).await? {
                Some(text) => Ok(bytes("application/json", text.into_bytes())),
                None => Err(no_document(name)),
            }
        }
        Method::PUT => put(ctl, caller, name, body).await,
        Method::DELETE => {
            caller.role.check(Need::Write, "delete API documents")?;
            if !ctl.store.delete_api_doc(name).await? {
                return Err(no_document(name));
            }
            ctl.store
                .audit(&caller.name, "apidoc.delete", &format!("api/{name}"), "")
                .await?;
            Ok(json(StatusCode::OK, &serde_json::json!({"deleted": name})))
        }
        _ => Err(ApiError::Method),
    }
}

fn no_document(name: &str) -> ApiError {
    ApiError::NotFound(format!("API {name:?} has no OpenAPI document"))
}

async fn put(
    ctl: &Control,
    caller: &Caller,
    name: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "upload API documents")?;
    check_name("API (route) name", name)?;
    let body = read_body(body, MAX_DOC_BYTES).await?;
    let doc = super::openapi_doc::check(&body).map_err(|problems| {
        ApiError::BadRequest(format!(
            "not a usable OpenAPI 3 document: {}",
            problems.join("; ")
        ))
    })?;
    let operations = super::openapi_doc::operations(&doc);
    let text = String::from_utf8_lossy(&body);
    let record = ctl.store.put_api_doc(name, &text, &caller.name).await?;
    ctl.store
        .audit(
            &caller.name,
            "apidoc.put",
            &format!("api/{name}"),
            &format!("{} bytes, {operations} operations", body.len()),
        )
        .await?;
    let mut answer = serde_json::json!(record);
    answer["operations"] = serde_json::json!(operations);
    Ok(json(StatusCode::OK, &answer))
}
