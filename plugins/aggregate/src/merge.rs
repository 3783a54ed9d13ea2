//! Turning the backends' answers into one JSON document: what counts as a failure, field
//! selection, the two merge strategies and the partial-failure rule. Plain Rust, unit-tested
//! natively.

use serde_json::{Map, Value};

use crate::config::{Backend, MergeMode, Settings};

/// Why one backend's answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, for the client and the log.
    pub message: String,
    /// The backend's status, when it answered.
    pub status: Option<u16>,
}

impl Failure {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".to_owned(), Value::String(self.message.clone()));
        if let Some(status) = self.status {
            m.insert("status".to_owned(), Value::from(status));
        }
        Value::Object(m)
    }
}

/// A backend's answer as the host returned it: `(status, body)`, or the host's error message
/// (not allowed, unreachable, timeout, too large).
pub type Answer = Result<(u16, Vec<u8>), String>;

/// Decide whether an answer is usable: a 2xx status with a JSON body (an object when merging
/// deeply), reduced to the backend's selected fields.
pub fn classify(backend: &Backend, mode: MergeMode, answer: Answer) -> Result<Value, Failure> {
    let (status, body) = answer.map_err(|message| Failure {
        message,
        status: None,
    })?;
    if !(200..300).contains(&status) {
        return Err(Failure {
            message: format!("upstream `{}` answered {status}", backend.upstream),
            status: Some(status),
        });
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| Failure {
        message: format!(
            "upstream `{}` answered with a body that is not JSON ({e})",
            backend.upstream
        ),
        status: Some(status),
    })?;
    if mode == MergeMode::Deep && !value.is_object() {
        return Err(Failure {
            message: format!(
                "upstream `{}` answered with JSON that is not an object, which cannot be merged",
                backend.upstream
            ),
            status: Some(status),
        });
    }
    Ok(match &backend.select {
        Some(paths) => select(&value, paths),
        None => value,
    })
}

/// Keep only the fields at `paths` (each a list of keys), nested as in the source. An array is
/// reduced element by element; missing fields are left out.
pub fn select(value: &Value, paths: &[Vec<String>]) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| select(v, paths)).collect()),
        Value::Object(_) => {
            let mut out = Value::Object(Map::new());
            for path in paths {
                if let Some(found) = lookup(value, path) {
                    insert_at(&mut out, path, found.clone());
                }
            }
            out
        }
        other => other.clone(),
    }
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn insert_at(out: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cursor = out;
    for key in parents {
        let Value::Object(map) = cursor else {
            return;
        };
        cursor = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(map) = cursor {
        map.insert(last.clone(), value);
    }
}

/// Merge `from` into `into`: objects key by key, recursively; anything else (arrays included)
/// is replaced by the later value.
pub fn deep_merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The merged answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Merged {
    /// Every required backend succeeded. `partial` when an optional one failed (its failure is
    /// under the errors key).
    Answer {
        /// The document sent to the client.
        body: Value,
        /// Some optional backend failed.
        partial: bool,
    },
    /// A required backend failed: the client gets 502 naming it.
    RequiredFailed {
        /// The first failed required backend, in config order.
        backend: String,
        /// Every failed required backend, in config order.
        failed: Vec<String>,
        /// Why the first one failed.
        failure: Failure,
    },
}

/// Combine the backends' outcomes (in config order) by the configured strategy.
pub fn merge(settings: &Settings, outcomes: Vec<Result<Value, Failure>>) -> Merged {
    let mut required_failures = Vec::new();
    let mut errors = Map::new();
    let mut body = Value::Object(Map::new());
    for (backend, outcome) in settings.backends.iter().zip(outcomes) {
        match outcome {
            Ok(value) => match settings.merge {
                MergeMode::Keyed => {
                    insert_at(&mut body, std::slice::from_ref(&backend.name), value)
                }
                MergeMode::Deep => deep_merge(&mut body, value),
            },
            Err(failure) if backend.required => required_failures.push((backend, failure)),
            Err(failure) => {
                if settings.merge == MergeMode::Keyed {
                    insert_at(&mut body, std::slice::from_ref(&backend.name), Value::Null);
                }
                errors.insert(backend.name.clone(), failure.to_json());
            }
        }
    }
    if let Some((first, failure)) = required_failures.first() {
        return Merged::RequiredFailed {
            backend: first.name.clone(),
            failed: required_failures
                .iter()
                .map(|(b, _)| b.name.clone())
                .collect(),
            failure: failure.clone(),
        };
    }
    let partial = !errors.is_empty();
    if partial && let Value::Object(map) = &mut body {
        map.insert(settings.errors_key.clone(), Value::Object(errors));
    }
    Merged::Answer { body, partial }
}

/// The 502 body for a failed required backend.
pub fn required_failure_body(backend: &str, failed: &[String], failure: &Failure) -> Value {
    let mut m = Map::new();
    m.insert(
        "error".to_owned(),
        Value::String(format!("required backend `{backend}` failed")),
    );
    m.insert("backend".to_owned(), Value::String(backend.to_owned()));
    m.insert("detail".to_owned(), Value::String(failure.message.clone()));
    if let Some(status) = failure.status {
        m.insert("status".to_owned(), Value::from(status));
    }
    m.insert(
        "failed".to_owned(),
        Value::Array(failed.iter().cloned().map(Value::String).collect()),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config;

    fn settings(merge: &str, backends: Value) -> Settings {
        let raw: config::RawConfig = tollgate_sdk::parse_config(
            &json!({ "merge": merge, "backends": backends }).to_string(),
        )
        .expect("parses");
        config::validate(raw).expect("valid")
    }

    fn ok(v: Value) -> Answer {
        Ok((200, v.to_string().into_bytes()))
    }

    fn two(merge: &str) -> Settings {
        settings(
            merge,
            json!([
                { "name": "user", "upstream": "users", "path": "/u", "select": ["id", "profile.city"] },
                { "name": "orders", "upstream": "orders", "path": "/o", "required": false },
            ]),
        )
    }

    #[test]
    fn failures_are_classified() {
        let s = two("keyed");
        let b = &s.backends[0];
        let f = classify(
            b,
            MergeMode::Keyed,
            Err("upstream `users` is unreachable".into()),
        )
        .expect_err("transport error");
        assert_eq!(f.status, None);
        let f = classify(b, MergeMode::Keyed, Ok((503, b"{}".to_vec()))).expect_err("503");
        assert_eq!(
            (f.message.as_str(), f.status),
            ("upstream `users` answered 503", Some(503))
        );
        let f = classify(b, MergeMode::Keyed, Ok((200, b"<html>".to_vec()))).expect_err("html");
        assert!(f.message.contains("not JSON"), "{}", f.message);
        let f = classify(b, MergeMode::Deep, ok(json!([1]))).expect_err("array in deep mode");
        assert!(f.message.contains("not an object"), "{}", f.message);
        assert_eq!(
            classify(b, MergeMode::Keyed, Ok((204, b"null".to_vec()))),
            Ok(Value::Null)
        );
    }

    #[test]
    fn selection_keeps_nested_fields_and_maps_arrays() {
        let paths = vec![
            vec!["id".to_owned()],
            vec!["profile".to_owned(), "city".to_owned()],
            vec!["missing".to_owned(), "x".to_owned()],
        ];
        let v = json!({ "id": 1, "secret": "s", "profile": { "city": "Oslo", "zip": "0150" } });
        assert_eq!(
            select(&v, &paths),
            json!({ "id": 1, "profile": { "city": "Oslo" } })
        );
        let arr = json!([{ "id": 1, "x": 2 }, { "id": 2 }, 7]);
        assert_eq!(select(&arr, &paths), json!([{ "id": 1 }, { "id": 2 }, 7]));
    }

    #[test]
    fn deep_merge_merges_objects_and_replaces_the_rest() {
        let mut a = json!({ "a": { "x": 1, "y": [1] }, "b": 1 });
        deep_merge(&mut a, json!({ "a": { "y": [2], "z": 3 }, "c": null }));
        assert_eq!(
            a,
            json!({ "a": { "x": 1, "y": [2], "z": 3 }, "b": 1, "c": null })
        );
    }

    #[test]
    fn keyed_merge_places_each_answer_under_its_name() {
        let s = two("keyed");
        let outcomes = vec![
            classify(&s.backends[0], s.merge, ok(json!({ "id": 7, "pw": "x" }))),
            classify(&s.backends[1], s.merge, ok(json!([{ "n": 1 }]))),
        ];
        assert_eq!(
            merge(&s, outcomes),
            Merged::Answer {
                body: json!({ "user": { "id": 7 }, "orders": [{ "n": 1 }] }),
                partial: false
            }
        );
    }

    #[test]
    fn a_failed_optional_backend_leaves_a_marker() {
        let s = two("keyed");
        let outcomes = vec![
            classify(&s.backends[0], s.merge, ok(json!({ "id": 7 }))),
            classify(
                &s.backends[1],
                s.merge,
                Err("upstream `orders` did not answer".into()),
            ),
        ];
        assert_eq!(
            merge(&s, outcomes),
            Merged::Answer {
                body: json!({
                    "user": { "id": 7 },
                    "orders": null,
                    "_errors": { "orders": { "error": "upstream `orders` did not answer" } },
                }),
                partial: true
            }
        );
        let s = two("deep");
        let outcomes = vec![
            classify(&s.backends[0], s.merge, ok(json!({ "id": 7 }))),
            classify(&s.backends[1], s.merge, Ok((500, Vec::new()))),
        ];
        assert_eq!(
            merge(&s, outcomes),
            Merged::Answer {
                body: json!({
                    "id": 7,
                    "_errors": { "orders": { "error": "upstream `orders` answered 500", "status": 500 } },
                }),
                partial: true
            }
        );
    }

    #[test]
    fn a_failed_required_backend_fails_the_whole_answer() {
        let s = settings(
            "keyed",
            json!([
                { "name": "a", "upstream": "ua", "path": "/" },
                { "name": "b", "upstream": "ub", "path": "/" },
                { "name": "c", "upstream": "uc", "path": "/", "required": false },
            ]),
        );
        let outcomes = vec![
            classify(&s.backends[0], s.merge, ok(json!(1))),
            classify(&s.backends[1], s.merge, Ok((404, Vec::new()))),
            classify(&s.backends[2], s.merge, Err("down".into())),
        ];
        let Merged::RequiredFailed {
            backend,
            failed,
            failure,
        } = merge(&s, outcomes)
        else {
            panic!("expected a required failure");
        };
        assert_eq!(
            (backend.as_str(), failed.clone()),
            ("b", vec!["b".to_owned()])
        );
        assert_eq!(
            required_failure_body(&backend, &failed, &failure),
            json!({
                "error": "required backend `b` failed",
                "backend": "b",
                "detail": "upstream `ub` answered 404",
                "status": 404,
                "failed": ["b"],
            })
        );
    }
}
