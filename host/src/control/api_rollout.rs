//! The control API's plugin-rollout routes (docs/rollout.md): a module's detached signature,
//! uploaded beside the module and fetched by gateways with it, and a canary's promote or
//! rollback for the whole fleet. Promote and rollback are config changes: each stores a new
//! revision derived from the current one (validated, audited, applied by every gateway), so
//! the config stays the one truth and a restarted gateway does not bring the canary back.

use http::StatusCode;
use hyper::body::Incoming;
use serde::Deserialize;

use super::Control;
use super::http::{Answer, ApiError, json, parse_json, read_body};
use super::roles::{Caller, Need};
use crate::signing::SignatureFile;

/// Largest signature file accepted (the real ones are ~250 bytes).
const MAX_SIGNATURE_BYTES: usize = 16 << 10;

/// `PUT /v1/modules/{hash}/signatures`: store the `.sig` file `tollgate plugin sign` wrote for
/// the stored module `hash`, one per signing key. Its signature is checked by each gateway
/// against its own trusted keys (and by the validator when a revision requires signatures);
/// here only its form.
pub async fn put_signature(
    ctl: &Control,
    caller: &Caller,
    hash: &str,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Write, "upload module signatures")?;
    let text = read_body(body, MAX_SIGNATURE_BYTES).await?;
    let file: SignatureFile = parse_json(&text)?;
    if file.algorithm != "ed25519" {
        return Err(ApiError::BadRequest(format!(
            "`algorithm` is {:?}; only \"ed25519\" is supported",
            file.algorithm
        )));
    }
    if file.sha256 != hash {
        return Err(ApiError::BadRequest(format!(
            "the signature is over module {}, not {hash}",
            file.sha256
        )));
    }
    super::ops::check_name("key_id", &file.key_id)?;
    if !ctl.store.has_module(hash).await? {
        return Err(ApiError::NotFound(format!(
            "no module {hash}: upload it first (PUT /v1/modules/{hash})"
        )));
    }
    let text = String::from_utf8(text.to_vec())
        .map_err(|_| ApiError::BadRequest("the signature file is not UTF-8".into()))?;
    if !ctl.store.signatures(hash).await?.contains(&text) {
        ctl.store.put_signature(hash, &file.key_id, &text).await?;
        ctl.store
            .audit(
                &caller.name,
                "module.sign",
                &format!("module/{hash}"),
                &format!("signed by key {}", file.key_id),
            )
            .await?;
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"sha256": hash, "key_id": file.key_id}),
    ))
}

/// `GET /v1/modules/{hash}/signatures`: the stored signature files (a JSON array of them).
pub async fn get_signatures(
    ctl: &Control,
    caller: &Caller,
    hash: &str,
) -> Result<Answer, ApiError> {
    caller.role.check(Need::Node, "read module signatures")?;
    let files: Vec<serde_json::Value> = ctl
        .store
        .signatures(hash)
        .await?
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .collect();
    Ok(json(StatusCode::OK, &files))
}

/// Of a module's signature files, the one to keep beside it for `config`: the first by a key
/// that `[gateway] trusted_keys` names as PEM text, else the first (so a refusal names the
/// signer); `None` without any.
pub fn pick_signature<'a>(config: &str, files: &'a [String]) -> Option<&'a String> {
    let trusted = trusted_key_ids(config);
    files
        .iter()
        .find(|text| {
            serde_json::from_str::<SignatureFile>(text).is_ok_and(|f| trusted.contains(&f.key_id))
        })
        .or_else(|| files.first())
}

/// The ids of the keys a config's `[gateway] trusted_keys` holds as PEM text.
fn trusted_key_ids(config: &str) -> Vec<String> {
    let Ok(doc) = config.parse::<toml::Table>() else {
        return Vec::new();
    };
    let keys = doc
        .get("gateway")
        .and_then(|g| g.get("trusted_keys"))
        .and_then(|k| k.as_array());
    keys.into_iter()
        .flatten()
        .filter_map(|k| k.as_str())
        .filter_map(|pem| crate::signing::TrustedKey::from_pem(pem).ok())
        .map(|k| k.id().to_owned())
        .collect()
}

/// What `POST /v1/plugins/{name}/canary/{action}` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryChange {
    /// The canary's module and config become the entry's; the canary table goes.
    Promote,
    /// The canary table goes; the entry's own module keeps serving.
    Rollback,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ChangeArgs {
    #[serde(default)]
    message: String,
}

/// `POST /v1/plugins/{name}/promote` and `/rollback`: a new revision with entry `name`'s canary
/// promoted or removed. 404 without such an entry, 409 when it has no canary.
pub async fn canary(
    ctl: &Control,
    caller: &Caller,
    name: &str,
    change: CanaryChange,
    body: Incoming,
) -> Result<Answer, ApiError> {
    caller
        .role
        .check(Need::Write, "promote or roll back a canary")?;
    let body = read_body(body, 64 << 10).await?;
    let args: ChangeArgs = if body.is_empty() {
        ChangeArgs::default()
    } else {
        parse_json(&body)?
    };
    let current = ctl
        .store
        .current()
        .await?
        .and_then(|r| r.config)
        .ok_or_else(|| ApiError::NotFound("no revision yet".into()))?;
    let (text, canary_module) = apply_change(&current, name, change)?;
    let verb = match change {
        CanaryChange::Promote => "promote",
        CanaryChange::Rollback => "roll back",
    };
    let message = if args.message.is_empty() {
        format!("{verb} the canary of {name} ({canary_module})")
    } else {
        args.message
    };
    match super::ops::create_revision(ctl, &caller.name, &text, &message).await? {
        Some(revision) => Ok(json(StatusCode::CREATED, &revision)),
        None => Err(ApiError::Conflict(format!(
            "the change leaves the config as it is (plugin `{name}`)"
        ))),
    }
}

/// `config` with entry `name`'s canary promoted or removed, and the canary's module; comments
/// and the rest of the file kept.
pub fn apply_change(
    config: &str,
    name: &str,
    change: CanaryChange,
) -> Result<(String, String), ApiError> {
    let mut doc = config
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| ApiError::Internal(format!("the current revision does not parse: {e}")))?;
    let entry = doc
        .get_mut("plugins")
        .and_then(|p| p.get_mut(name))
        .and_then(|e| e.as_table_like_mut())
        .ok_or_else(|| ApiError::NotFound(format!("no plugin entry `{name}` in the config")))?;
    let canary = entry.remove("canary").ok_or_else(|| {
        ApiError::Conflict(format!(
            "plugin `{name}` has no canary in the current revision"
        ))
    })?;
    let canary_table = canary
        .as_table_like()
        .ok_or_else(|| ApiError::Conflict(format!("`plugins.{name}.canary` is not a table")))?;
    let module = canary_table
        .get("module")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Conflict(format!("`plugins.{name}.canary` has no module")))?;
    if change == CanaryChange::Promote {
        let config = canary_table.get("config").cloned();
        entry.insert("module", toml_edit::value(module.clone()));
        match config {
            Some(config) => {
                entry.insert("config", config);
            }
            None => {
                entry.remove("config");
            }
        }
    }
    Ok((doc.to_string(), module))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# the fleet
[plugins.tag]
module = "modules/aaaa.wasm"
[plugins.tag.config]
value = "stable"
[plugins.tag.canary]
module = "modules/bbbb.wasm"
percent = 10.0
[plugins.tag.canary.config]
value = "canary"

[plugins.other]
module = "modules/cccc.wasm"
"#;

    #[test]
    fn promote_moves_the_canary_into_the_entry() {
        let (text, module) = apply_change(CONFIG, "tag", CanaryChange::Promote).unwrap();
        assert_eq!(module, "modules/bbbb.wasm");
        let doc: toml::Table = text.parse().unwrap();
        let tag = &doc["plugins"]["tag"];
        assert_eq!(tag["module"].as_str(), Some("modules/bbbb.wasm"));
        assert_eq!(tag["config"]["value"].as_str(), Some("canary"));
        assert!(tag.get("canary").is_none());
        assert!(text.starts_with("# the fleet"));
    }

    #[test]
    fn rollback_drops_the_canary_and_keeps_the_entry() {
        let (text, _) = apply_change(CONFIG, "tag", CanaryChange::Rollback).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        let tag = &doc["plugins"]["tag"];
        assert_eq!(tag["module"].as_str(), Some("modules/aaaa.wasm"));
        assert_eq!(tag["config"]["value"].as_str(), Some("stable"));
        assert!(tag.get("canary").is_none());
    }

    #[test]
    fn entries_without_a_canary_are_refused() {
        let e = apply_change(CONFIG, "other", CanaryChange::Promote).unwrap_err();
        assert!(matches!(e, ApiError::Conflict(_)), "{e:?}");
        let e = apply_change(CONFIG, "missing", CanaryChange::Rollback).unwrap_err();
        assert!(matches!(e, ApiError::NotFound(_)), "{e:?}");
    }
}
