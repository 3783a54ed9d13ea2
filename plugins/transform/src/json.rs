//! JSON field operations addressed by JSON Pointer (RFC 6901): set, remove, rename, move,
//! wrap in an envelope and unwrap one.
//!
//! Missing fields are not an error for `remove`, `rename`, `move` and `unwrap` (nothing to do);
//! `set` creates missing objects on the way. Going through a value that is neither an object nor
//! an array is an error.

use serde_json::{Map, Value};

/// A parsed JSON Pointer: the reference tokens, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer(Vec<String>);

impl Pointer {
    /// Parse `""` (the whole document) or `/a/b~1c` (`~1` is `/`, `~0` is `~`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Pointer(Vec::new()));
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "a JSON pointer must be empty or start with `/`: {text:?}"
            ));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => return Err(format!("bad `~` escape in JSON pointer {text:?}")),
                    }
                } else {
                    token.push(c);
                }
            }
            tokens.push(token);
        }
        Ok(Pointer(tokens))
    }

    /// Whether this is the whole document.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn display(&self) -> String {
        self.0
            .iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonOp {
    /// Set the value at the pointer (creating objects on the way; `-` appends to an array).
    Set(Pointer, Value),
    /// Remove the field or array element.
    Remove(Pointer),
    /// Give the field a new name within the same object.
    Rename(Pointer, String),
    /// Move the value to another place (created like `Set`).
    Move(Pointer, Pointer),
    /// Replace the document `d` with `{key: d}`.
    Wrap(String),
    /// Replace the document with its field `key`, when it is an object that has it.
    Unwrap(String),
}

/// Apply the operations in order.
pub fn apply(ops: &[JsonOp], doc: &mut Value) -> Result<(), String> {
    for op in ops {
        match op {
            JsonOp::Set(p, value) => set(doc, p, value.clone())?,
            JsonOp::Remove(p) => {
                take(doc, p)?;
            }
            JsonOp::Rename(p, to) => {
                let (parent_tokens, last) = p.0.split_at(p.0.len() - 1);
                let parent = Pointer(parent_tokens.to_vec());
                if let Some(Value::Object(map)) = get_mut(doc, &parent)?
                    && let Some(value) = map.remove(&last[0])
                {
                    map.insert(to.clone(), value);
                }
            }
            JsonOp::Move(from, to) => {
                if let Some(value) = take(doc, from)? {
                    set(doc, to, value)?;
                }
            }
            JsonOp::Wrap(key) => {
                let inner = std::mem::take(doc);
                let mut map = Map::new();
                map.insert(key.clone(), inner);
                *doc = Value::Object(map);
            }
            JsonOp::Unwrap(key) => {
                if let Value::Object(map) = doc
                    && let Some(inner) = map.remove(key)
                {
                    *doc = inner;
                }
            }
        }
    }
    Ok(())
}

fn index(token: &str, len: usize) -> Option<usize> {
    // RFC 6901: no leading zeros, no signs.
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse::<usize>().ok().filter(|i| *i < len)
}

fn not_container(p: &Pointer, depth: usize) -> String {
    let at = Pointer(p.0[..depth].to_vec()).display();
    let at = if at.is_empty() {
        "the body".to_owned()
    } else {
        at
    };
    format!("{}: {at} is not an object or array", p.display())
}

/// The value at `p`, `None` when some field on the way is missing.
fn get_mut<'a>(doc: &'a mut Value, p: &Pointer) -> Result<Option<&'a mut Value>, String> {
    let mut cur = doc;
    for (depth, token) in p.0.iter().enumerate() {
        cur = match cur {
            Value::Object(map) => match map.get_mut(token) {
                Some(v) => v,
                None => return Ok(None),
            },
            Value::Array(items) => match index(token, items.len()) {
                Some(i) => &mut items[i],
                None => return Ok(None),
            },
            _ => return Err(not_container(p, depth)),
        };
    }
    Ok(Some(cur))
}

/// Remove and return the value at `p` (not the root), `None` when absent.
fn take(doc: &mut Value, p: &Pointer) -> Result<Option<Value>, String> {
    let (parent_tokens, last) = p.0.split_at(p.0.len() - 1);
    let parent = Pointer(parent_tokens.to_vec());
    Ok(match get_mut(doc, &parent)? {
        Some(Value::Object(map)) => map.remove(&last[0]),
        Some(Value::Array(items)) => index(&last[0], items.len()).map(|i| items.remove(i)),
        Some(_) => return Err(not_container(p, p.0.len() - 1)),
        None => None,
    })
}

/// Put `value` at `p`, creating missing objects on the way.
fn set(doc: &mut Value, p: &Pointer, value: Value) -> Result<(), String> {
    let Some((last, parents)) = p.0.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for (depth, token) in parents.iter().enumerate() {
        cur = match cur {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => match index(token, items.len()) {
                Some(i) => &mut items[i],
                None => return Err(format!("{}: no array element {token:?}", p.display())),
            },
            _ => return Err(not_container(p, depth)),
        };
    }
    match cur {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => match index(last, items.len()) {
            Some(i) => items[i] = value,
            None => return Err(format!("{}: no array element {last:?}", p.display())),
        },
        _ => return Err(not_container(p, parents.len())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ptr(s: &str) -> Pointer {
        Pointer::parse(s).expect("valid pointer")
    }

    fn run(ops: Vec<JsonOp>, mut doc: Value) -> Result<Value, String> {
        apply(&ops, &mut doc).map(|()| doc)
    }

    #[test]
    fn pointers_unescape() {
        assert_eq!(ptr("/a~1b/c~0d").0, vec!["a/b", "c~d"]);
        assert!(ptr("").is_root());
        assert!(Pointer::parse("a").is_err());
        assert!(Pointer::parse("/a~2").is_err());
    }

    #[test]
    fn set_creates_objects_and_appends() {
        let out = run(
            vec![
                JsonOp::Set(ptr("/meta/source"), json!("gw")),
                JsonOp::Set(ptr("/items/-"), json!(3)),
                JsonOp::Set(ptr("/items/0"), json!(0)),
            ],
            json!({ "items": [1, 2] }),
        )
        .expect("ok");
        assert_eq!(
            out,
            json!({ "items": [0, 2, 3], "meta": { "source": "gw" } })
        );
    }

    #[test]
    fn remove_rename_move() {
        let out = run(
            vec![
                JsonOp::Remove(ptr("/password")),
                JsonOp::Remove(ptr("/missing/deep")),
                JsonOp::Rename(ptr("/user/name"), "login".into()),
                JsonOp::Move(ptr("/user/id"), ptr("/id")),
                JsonOp::Remove(ptr("/tags/0")),
            ],
            json!({ "password": "x", "user": { "name": "ann", "id": 7 }, "tags": ["a", "b"] }),
        )
        .expect("ok");
        assert_eq!(
            out,
            json!({ "user": { "login": "ann" }, "id": 7, "tags": ["b"] })
        );
    }

    #[test]
    fn wrap_and_unwrap() {
        let out = run(vec![JsonOp::Wrap("data".into())], json!([1])).expect("ok");
        assert_eq!(out, json!({ "data": [1] }));
        let out = run(
            vec![JsonOp::Unwrap("result".into())],
            json!({ "result": { "a": 1 }, "ok": true }),
        )
        .expect("ok");
        assert_eq!(out, json!({ "a": 1 }));
        let out = run(
            vec![JsonOp::Unwrap("result".into())],
            json!({ "error": "x" }),
        )
        .expect("ok");
        assert_eq!(out, json!({ "error": "x" }), "no envelope: unchanged");
    }

    #[test]
    fn going_through_a_scalar_is_an_error() {
        let err = run(
            vec![JsonOp::Set(ptr("/a/b"), json!(1))],
            json!({ "a": "text" }),
        )
        .expect_err("fails");
        assert_eq!(err, "/a/b: /a is not an object or array");
        let err = run(vec![JsonOp::Set(ptr("/a"), json!(1))], json!("text")).expect_err("fails");
        assert_eq!(err, "/a: the body is not an object or array");
        let out = run(vec![JsonOp::Set(ptr(""), json!({ "new": 1 }))], json!([])).expect("root");
        assert_eq!(out, json!({ "new": 1 }));
    }
}
