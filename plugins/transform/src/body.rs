//! Body rules: decide from the content type whether a body is ours to touch, translate it
//! (form ↔ JSON, XML → JSON), apply the JSON operations and serialise the result.
//!
//! Memory stays bounded: the gateway caps what it buffers (`[limits]`), this module refuses to
//! parse more than `max_body_bytes`, serde_json stops at 128 levels of nesting, XML parsing
//! refuses DTDs (so no entity expansion) and stops at a node limit, and the XML tree is walked
//! at most [`MAX_XML_DEPTH`] deep.

use serde_json::{Map, Value};

use crate::config::{BodyRules, Convert};
use crate::json;

/// Deepest XML element nesting converted.
pub const MAX_XML_DEPTH: usize = 64;

/// The media types a body can have for our purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Json,
    Form,
    Xml,
    Other,
}

/// Classify a `Content-Type` value by its essence (before `;`), case-insensitively.
pub fn kind(content_type: Option<&str>) -> Kind {
    let Some(ct) = content_type else {
        return Kind::Other;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Kind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        Kind::Form
    } else if essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml") {
        Kind::Xml
    } else {
        Kind::Other
    }
}

/// What to do with the body.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not ours (other content type, empty body, no rule applies): leave it as it is.
    Unchanged,
    /// Send this body; `content_type` is set when the format changed.
    Replaced {
        /// New body.
        body: Vec<u8>,
        /// New `Content-Type`, when the format changed.
        content_type: Option<&'static str>,
    },
}

/// Why a body could not be transformed.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the plugin's `max_body_bytes`.
    TooLarge(usize),
    /// Not parseable, or an operation does not fit its shape.
    Invalid(String),
}

const JSON_TYPE: &str = "application/json";
const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// Whether `rules` would look at a body of this content type (so the caller can skip reading it).
pub fn applies(rules: &BodyRules, content_type: Option<&str>) -> bool {
    let k = kind(content_type);
    match rules.convert {
        Some(Convert::FormToJson) => k == Kind::Form || (k == Kind::Json && !rules.json.is_empty()),
        Some(Convert::JsonToForm) => k == Kind::Json,
        Some(Convert::XmlToJson) => k == Kind::Xml || (k == Kind::Json && !rules.json.is_empty()),
        None => k == Kind::Json && !rules.json.is_empty(),
    }
}

/// Apply `rules` to a body of the given content type.
pub fn transform(
    rules: &BodyRules,
    content_type: Option<&str>,
    body: &[u8],
    max: usize,
) -> Result<Outcome, BodyError> {
    if body.is_empty() || !applies(rules, content_type) {
        return Ok(Outcome::Unchanged);
    }
    if body.len() > max {
        return Err(BodyError::TooLarge(max));
    }
    let k = kind(content_type);
    let (mut doc, converted) = match k {
        Kind::Form => (form_to_json(body), true),
        Kind::Xml => (xml_to_json(body)?, true),
        _ => (parse_json(body)?, false),
    };
    json::apply(&rules.json, &mut doc).map_err(BodyError::Invalid)?;
    if rules.convert == Some(Convert::JsonToForm) {
        return Ok(Outcome::Replaced {
            body: json_to_form(&doc)?.into_bytes(),
            content_type: Some(FORM_TYPE),
        });
    }
    let body = serde_json::to_vec(&doc).map_err(|e| BodyError::Invalid(e.to_string()))?;
    Ok(Outcome::Replaced {
        body,
        content_type: converted.then_some(JSON_TYPE),
    })
}

fn parse_json(body: &[u8]) -> Result<Value, BodyError> {
    serde_json::from_slice(body)
        .map_err(|e| BodyError::Invalid(format!("body is not valid JSON: {e}")))
}

/// Form fields to a JSON object of strings; a repeated name becomes an array.
fn form_to_json(body: &[u8]) -> Value {
    let mut map = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match map.get_mut(name.as_ref()) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(name.into_owned(), value);
            }
        }
    }
    Value::Object(map)
}

/// A JSON object of scalars (or arrays of scalars, sent as repeated fields) to a form body.
fn json_to_form(doc: &Value) -> Result<String, BodyError> {
    let Value::Object(map) = doc else {
        return Err(BodyError::Invalid(
            "only a JSON object can become a form body".into(),
        ));
    };
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in map {
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for value in values {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Bool(_) | Value::Number(_) => value.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(BodyError::Invalid(format!(
                        "field {name:?} is nested and cannot be a form field"
                    )));
                }
            };
            form.append_pair(name, &text);
        }
    }
    Ok(form.finish())
}

/// XML to JSON: `{"root": element}` where an element is its text when it has neither attributes
/// nor child elements, and otherwise an object of `@attribute` strings, child elements by local
/// name (an array when repeated) and `#text` for non-blank text. Values stay strings.
fn xml_to_json(body: &[u8]) -> Result<Value, BodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| BodyError::Invalid("XML body is not UTF-8".into()))?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        // A node costs well under 100 bytes, so this bounds the tree by the body size.
        nodes_limit: u32::try_from(body.len())
            .unwrap_or(u32::MAX)
            .saturating_add(16),
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| BodyError::Invalid(format!("body is not valid XML: {e}")))?;
    let root = doc.root_element();
    let mut map = Map::new();
    map.insert(root.tag_name().name().to_owned(), element(root, 1)?);
    Ok(Value::Object(map))
}

fn element(node: roxmltree::Node<'_, '_>, depth: usize) -> Result<Value, BodyError> {
    if depth > MAX_XML_DEPTH {
        return Err(BodyError::Invalid(format!(
            "XML is nested deeper than {MAX_XML_DEPTH} elements"
        )));
    }
    let mut text = String::new();
    let mut children: Vec<(String, Value)> = Vec::new();
    for child in node.children() {
        if child.is_element() {
            children.push((
                child.tag_name().name().to_owned(),
                element(child, depth + 1)?,
            ));
        } else if child.is_text() {
            text.push_str(child.text().unwrap_or_default());
        }
    }
    let text = text.trim();
    if children.is_empty() && node.attributes().len() == 0 {
        return Ok(Value::String(text.to_owned()));
    }
    let mut map = Map::new();
    for attr in node.attributes() {
        map.insert(
            format!("@{}", attr.name()),
            Value::String(attr.value().to_owned()),
        );
    }
    for (name, value) in children {
        match map.get_mut(&name) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(name, value);
            }
        }
    }
    if !text.is_empty() {
        map.insert("#text".into(), Value::String(text.to_owned()));
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonOp, Pointer};
    use serde_json::json;

    fn rules(convert: Option<Convert>, ops: Vec<JsonOp>) -> BodyRules {
        BodyRules { convert, json: ops }
    }

    fn replaced(outcome: Result<Outcome, BodyError>) -> (Value, Option<&'static str>) {
        match outcome {
            Ok(Outcome::Replaced { body, content_type }) => (
                serde_json::from_slice(&body)
                    .unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))),
                content_type,
            ),
            other => panic!("expected a replaced body, got {other:?}"),
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(kind(Some("Application/JSON; charset=utf-8")), Kind::Json);
        assert_eq!(kind(Some("application/problem+json")), Kind::Json);
        assert_eq!(kind(Some("application/x-www-form-urlencoded")), Kind::Form);
        assert_eq!(kind(Some("text/xml;charset=UTF-8")), Kind::Xml);
        assert_eq!(kind(Some("application/soap+xml")), Kind::Xml);
        assert_eq!(kind(Some("text/html")), Kind::Other);
        assert_eq!(kind(None), Kind::Other);
    }

    #[test]
    fn json_ops_only_touch_json_bodies() {
        let r = rules(
            None,
            vec![JsonOp::Remove(Pointer::parse("/a").expect("ptr"))],
        );
        let (doc, ct) = replaced(transform(
            &r,
            Some("application/json"),
            br#"{"a":1,"b":2}"#,
            100,
        ));
        assert_eq!(doc, json!({ "b": 2 }));
        assert_eq!(ct, None);
        assert_eq!(
            transform(&r, Some("text/html"), b"<a>", 100),
            Ok(Outcome::Unchanged)
        );
        assert_eq!(
            transform(&r, Some("application/json"), b"", 100),
            Ok(Outcome::Unchanged)
        );
    }

    #[test]
    fn limits_and_bad_json() {
        let r = rules(None, vec![JsonOp::Wrap("d".into())]);
        assert_eq!(
            transform(&r, Some("application/json"), b"[1,2,3]", 4),
            Err(BodyError::TooLarge(4))
        );
        assert!(matches!(
            transform(&r, Some("application/json"), b"{nope", 100),
            Err(BodyError::Invalid(_))
        ));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            transform(&r, Some("application/json"), deep.as_bytes(), 1000),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn form_to_json_and_back() {
        let r = rules(Some(Convert::FormToJson), vec![]);
        let (doc, ct) = replaced(transform(
            &r,
            Some("application/x-www-form-urlencoded"),
            b"name=Ann+Lee&tag=a&tag=b&empty=",
            100,
        ));
        assert_eq!(
            doc,
            json!({ "name": "Ann Lee", "tag": ["a", "b"], "empty": "" })
        );
        assert_eq!(ct, Some("application/json"));

        let r = rules(Some(Convert::JsonToForm), vec![]);
        let outcome = transform(
            &r,
            Some("application/json"),
            br#"{"name":"Ann Lee","n":3,"ok":true,"tag":["a","b"],"none":null}"#,
            100,
        );
        assert_eq!(
            outcome,
            Ok(Outcome::Replaced {
                // serde_json keeps object keys sorted.
                body: b"n=3&name=Ann+Lee&none=&ok=true&tag=a&tag=b".to_vec(),
                content_type: Some("application/x-www-form-urlencoded"),
            })
        );
        assert!(matches!(
            transform(&r, Some("application/json"), br#"{"a":{"b":1}}"#, 100),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn xml_to_json() {
        let r = rules(
            Some(Convert::XmlToJson),
            vec![JsonOp::Unwrap("order".into())],
        );
        let xml = br#"<?xml version="1.0"?>
            <order id="7"><item sku="a">2</item><item sku="b">1</item><note><![CDATA[fast & <safe>]]></note><empty/></order>"#;
        let (doc, ct) = replaced(transform(&r, Some("text/xml"), xml, 1000));
        assert_eq!(
            doc,
            json!({
                "@id": "7",
                "item": [{ "@sku": "a", "#text": "2" }, { "@sku": "b", "#text": "1" }],
                "note": "fast & <safe>",
                "empty": "",
            })
        );
        assert_eq!(ct, Some("application/json"));
    }

    #[test]
    fn xml_with_a_dtd_or_too_deep_is_refused() {
        let r = rules(Some(Convert::XmlToJson), vec![]);
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>"#;
        assert!(matches!(
            transform(&r, Some("application/xml"), bomb, 1000),
            Err(BodyError::Invalid(_))
        ));
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        let err = transform(&r, Some("application/xml"), deep.as_bytes(), 10_000);
        assert!(
            matches!(err, Err(BodyError::Invalid(ref m)) if m.contains("deeper")),
            "{err:?}"
        );
    }
}
