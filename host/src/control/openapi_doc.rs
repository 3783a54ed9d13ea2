//! Checking an uploaded OpenAPI document before it is stored: JSON (YAML is not read: the
//! control plane has no YAML parser; convert with `yq -o json`), an OpenAPI 3.x object with
//! `openapi`, `info` (`title`, `version`) and `paths`, each path starting with `/`, each
//! operation an object. Every problem found is named, by its place in the document.

use serde_json::Value;

/// The HTTP methods an OpenAPI path item may hold, in the order pages show them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "options", "head", "trace",
];

/// At most this many problems are listed in one refusal.
const MAX_PROBLEMS: usize = 20;

/// The document parsed, or every problem found with it (each naming where it is).
pub fn check(body: &[u8]) -> Result<Value, Vec<String>> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| vec![not_json(body, &e)])?;
    let Some(top) = doc.as_object() else {
        return Err(vec!["the document must be a JSON object".to_owned()]);
    };
    let mut problems = Vec::new();
    if top.contains_key("swagger") {
        problems.push(
            "`swagger`: Swagger 2.0 documents are not accepted; convert to OpenAPI 3.x".to_owned(),
        );
    }
    match top.get("openapi") {
        Some(Value::String(v)) if v.starts_with("3.") => {}
        Some(other) => problems.push(format!(
            "`openapi` must be a 3.x version string such as \"3.0.3\", not {other}"
        )),
        None => problems.push("`openapi` is missing (e.g. \"openapi\": \"3.0.3\")".to_owned()),
    }
    check_info(top.get("info"), &mut problems);
    match top.get("paths") {
        Some(Value::Object(paths)) => {
            for (path, item) in paths {
                check_path(path, item, &mut problems);
            }
        }
        Some(_) => problems.push("`paths` must be an object of path → path item".to_owned()),
        None => problems.push("`paths` is missing (an object, `{}` when empty)".to_owned()),
    }
    if problems.is_empty() {
        Ok(doc)
    } else {
        problems.truncate(MAX_PROBLEMS);
        Err(problems)
    }
}

/// Operations in a checked document.
pub fn operations(doc: &Value) -> usize {
    doc.get("paths")
        .and_then(Value::as_object)
        .map_or(0, |paths| {
            paths
                .values()
                .filter_map(Value::as_object)
                .map(|item| METHODS.iter().filter(|m| item.contains_key(**m)).count())
                .sum()
        })
}

fn not_json(body: &[u8], e: &serde_json::Error) -> String {
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    if start.is_some_and(|b| *b != b'{' && *b != b'[') {
        format!(
            "the document is not JSON ({e}); YAML is not accepted: convert it first (e.g. `yq -o json`)"
        )
    } else {
        format!("the document is not valid JSON: {e}")
    }
}

fn check_info(info: Option<&Value>, problems: &mut Vec<String>) {
    let Some(info) = info else {
        problems.push("`info` is missing (an object with `title` and `version`)".to_owned());
        return;
    };
    let Some(info) = info.as_object() else {
        problems.push("`info` must be an object with `title` and `version`".to_owned());
        return;
    };
    for key in ["title", "version"] {
        if !info.get(key).is_some_and(Value::is_string) {
            problems.push(format!("`info.{key}` must be a string"));
        }
    }
}

fn check_path(path: &str, item: &Value, problems: &mut Vec<String>) {
    if !path.starts_with('/') {
        problems.push(format!("`paths.{path}`: a path must start with `/`"));
    }
    let Some(item) = item.as_object() else {
        problems.push(format!("`paths.{path}` must be an object (a path item)"));
        return;
    };
    for method in METHODS {
        match item.get(method) {
            None => {}
            Some(Value::Object(op)) => {
                if let Some(r) = op.get("responses")
                    && !r.is_object()
                {
                    problems.push(format!(
                        "`paths.{path}.{method}.responses` must be an object of status → response"
                    ));
                }
                if let Some(p) = op.get("parameters")
                    && !p.is_array()
                {
                    problems.push(format!(
                        "`paths.{path}.{method}.parameters` must be an array"
                    ));
                }
            }
            Some(_) => problems.push(format!(
                "`paths.{path}.{method}` must be an object (an operation)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_document_passes_and_counts_its_operations() {
        let body = br#"{"openapi":"3.1.0","info":{"title":"T","version":"1"},
            "paths":{"/a":{"get":{"responses":{}},"post":{}},"/b":{"summary":"x"}}}"#;
        let doc = check(body).unwrap_or_default();
        assert_eq!(operations(&doc), 2);
    }

    #[test]
    fn every_problem_is_named() {
        let body = br#"{"swagger":"2.0","info":{"title":1},"paths":{"a":{"get":3}}}"#;
        let problems = check(body).err().unwrap_or_default();
        let text = problems.join("\n");
        for expected in [
            "`swagger`",
            "`openapi` is missing",
            "`info.title`",
            "`info.version`",
            "`paths.a`: a path must start",
            "`paths.a.get` must be an object",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
    }

    #[test]
    fn yaml_gets_a_hint() {
        let problems = check(b"openapi: 3.0.3\npaths: {}\n")
            .err()
            .unwrap_or_default();
        assert!(
            problems.join("").contains("YAML is not accepted"),
            "{problems:?}"
        );
    }
}
