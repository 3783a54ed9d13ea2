//! JSON Schemas of an OpenAPI document drawn as nested field lists: type, format, enum values,
//! required marks and descriptions, `$ref`s to `#/components/...` followed, `allOf` / `oneOf` /
//! `anyOf` listed. A reference already being drawn above is named instead of drawn again
//! (cycles), nesting stops at [`MAX_DEPTH`], and one page draws at most [`BUDGET`] fields, so a
//! small document full of references cannot make a huge page. Everything from the document is
//! spliced as text (maud escapes it), never as markup.

use maud::{Markup, html};
use serde_json::Value;

/// Deepest nesting drawn.
const MAX_DEPTH: usize = 8;
/// Most schema nodes drawn on one page.
const BUDGET: usize = 3000;
/// Most `$ref` hops followed from one place (a reference to a reference ...).
const MAX_HOPS: usize = 16;

/// Draws the schemas of one document, sharing one budget.
pub struct Drawer<'a> {
    doc: &'a Value,
    left: usize,
}

impl<'a> Drawer<'a> {
    /// A drawer for `doc` with the full budget.
    pub fn new(doc: &'a Value) -> Self {
        Self { doc, left: BUDGET }
    }

    /// `value` with `$ref`s followed (`None` when one leads nowhere), and the last name followed.
    pub fn resolve<'v>(&self, value: &'v Value) -> (Option<&'v Value>, Option<String>)
    where
        'a: 'v,
    {
        let mut at = value;
        let mut name = None;
        for _ in 0..MAX_HOPS {
            let Some(target) = at.get("$ref").and_then(Value::as_str) else {
                return (Some(at), name);
            };
            name = Some(target.rsplit('/').next().unwrap_or(target).to_owned());
            match pointer(self.doc, target) {
                Some(next) => at = next,
                None => return (None, name),
            }
        }
        (None, name)
    }

    /// A schema as a nested list.
    pub fn schema(&mut self, schema: &Value) -> Markup {
        let mut stack = Vec::new();
        self.node(schema, 0, &mut stack)
    }

    fn node(&mut self, schema: &Value, depth: usize, stack: &mut Vec<String>) -> Markup {
        let reference = schema
            .get("$ref")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(r) = &reference
            && stack.contains(r)
        {
            return html! { span.note { "↻ " code { (short(r)) } " (drawn above: it contains itself)" } };
        }
        if depth > MAX_DEPTH {
            return html! { span.note { "… nested deeper than " (MAX_DEPTH) " levels" } };
        }
        if self.left == 0 {
            return html! { span.note { "… (too large to draw here: see the document itself)" } };
        }
        self.left -= 1;
        let (resolved, name) = self.resolve(schema);
        let Some(resolved) = resolved else {
            return html! { span.error { "unresolved reference " code { (reference.unwrap_or_default()) } } };
        };
        if let Some(r) = &reference {
            stack.push(r.clone());
        }
        let drawn = self.body(resolved, name.as_deref(), depth, stack);
        if reference.is_some() {
            stack.pop();
        }
        drawn
    }

    fn body(
        &mut self,
        s: &Value,
        name: Option<&str>,
        depth: usize,
        stack: &mut Vec<String>,
    ) -> Markup {
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let properties = s.get("properties").and_then(Value::as_object);
        let items = s.get("items");
        let combos: Vec<(&str, &Vec<Value>)> = ["allOf", "oneOf", "anyOf"]
            .iter()
            .filter_map(|k| s.get(*k).and_then(Value::as_array).map(|a| (*k, a)))
            .collect();
        html! {
            span.schema-type { (type_of(s)) }
            @if let Some(n) = name { " " span.note { "(" (n) ")" } }
            @if let Some(d) = text(s, "description") { " — " (d) }
            @if let Some(values) = s.get("enum").and_then(Value::as_array) {
                br; span.note { "one of: " } @for (i, v) in values.iter().enumerate() { @if i > 0 { ", " } code { (plain(v)) } }
            }
            @if let Some(example) = s.get("example") { br; span.note { "example: " } code { (plain(example)) } }
            @if let Some(props) = properties { ul.fields { @for (field, sub) in props {
                li { code { (field) } @if required.contains(&field.as_str()) { " " span.badge.warn { "required" } } " " (self.node(sub, depth + 1, stack)) }
            } } }
            @if let Some(items) = items { ul.fields { li { "items: " (self.node(items, depth + 1, stack)) } } }
            @for (kind, list) in &combos { ul.fields {
                li { (combo_label(kind)) ul.fields { @for sub in list.iter() { li { (self.node(sub, depth + 1, stack)) } } } }
            } }
        }
    }
}

/// A JSON pointer into the document (`#/components/schemas/Pet`); other documents are not read.
fn pointer<'v>(doc: &'v Value, target: &str) -> Option<&'v Value> {
    let path = target.strip_prefix('#')?;
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    doc.pointer(&decoded)
}

fn short(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

fn combo_label(kind: &str) -> &'static str {
    match kind {
        "allOf" => "all of:",
        "oneOf" => "exactly one of:",
        _ => "any of:",
    }
}

/// A string field of an object.
pub fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A scalar as written, a string without its quotes.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `string (date-time)`, `array of integer`, `object`, `string | null`...
pub fn type_of(s: &Value) -> String {
    let base = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().map(plain).collect::<Vec<_>>().join(" | "),
        _ if s.get("properties").is_some() => "object".to_owned(),
        _ if s.get("items").is_some() => "array".to_owned(),
        _ => "any".to_owned(),
    };
    let mut out = base;
    if out == "array"
        && let Some(items) = s.get("items")
    {
        let inner = items
            .get("$ref")
            .and_then(Value::as_str)
            .map_or_else(|| type_of(items), |r| short(r).to_owned());
        out = format!("array of {inner}");
    }
    if let Some(f) = text(s, "format") {
        out = format!("{out} ({f})");
    }
    if s.get("nullable").and_then(Value::as_bool) == Some(true) {
        out.push_str(" | null");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_named_not_followed_and_the_budget_holds() {
        let doc = serde_json::json!({"components": {"schemas": {
            "Node": {"type": "object", "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}
        }}});
        let mut d = Drawer::new(&doc);
        let html = d
            .schema(&serde_json::json!({"$ref": "#/components/schemas/Node"}))
            .into_string();
        assert!(html.contains("drawn above"), "{html}");
        assert!(html.contains("array of Node"), "{html}");
        let missing = d
            .schema(&serde_json::json!({"$ref": "#/components/schemas/Gone"}))
            .into_string();
        assert!(missing.contains("unresolved reference"), "{missing}");
    }

    #[test]
    fn fan_out_is_bounded() {
        // Ten fields each pointing at the next level: 10^8 fields if drawn in full.
        let mut schemas = serde_json::Map::new();
        for level in 0..8 {
            let next = serde_json::json!({"$ref": format!("#/components/schemas/L{}", level + 1)});
            let props: serde_json::Map<String, Value> =
                (0..10).map(|i| (format!("f{i}"), next.clone())).collect();
            schemas.insert(
                format!("L{level}"),
                serde_json::json!({"properties": props}),
            );
        }
        schemas.insert("L8".into(), serde_json::json!({"type": "string"}));
        let doc = serde_json::json!({"components": {"schemas": schemas}});
        let html = Drawer::new(&doc)
            .schema(&serde_json::json!({"$ref": "#/components/schemas/L0"}))
            .into_string();
        assert!(html.contains("too large to draw here"));
        assert!(html.len() < 2_000_000, "{} bytes", html.len());
    }
}
