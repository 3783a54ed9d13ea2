//! Query parameter operations. Parameters the rules do not touch keep their exact original
//! text (so `%20` stays `%20`); names are matched after decoding.

use crate::config::PairOps;

struct Param {
    /// Decoded name, for matching.
    name: String,
    /// Raw `name=value` text as it will be sent.
    raw: String,
}

fn decoded_name(piece: &str) -> String {
    form_urlencoded::parse(piece.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn pair(name: &str, value: &str) -> Param {
    Param {
        name: name.to_owned(),
        raw: format!("{}={}", encode(name), encode(value)),
    }
}

/// Apply `ops` (remove, rename, set, add, in that order) to a raw query string. Returns the new
/// query, `None` when no parameter is left.
pub fn apply(ops: &PairOps, query: Option<&str>) -> Option<String> {
    let mut params: Vec<Param> = query
        .unwrap_or_default()
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| Param {
            name: decoded_name(piece),
            raw: piece.to_owned(),
        })
        .collect();

    params.retain(|p| !ops.remove.contains(&p.name));
    for (from, to) in &ops.rename {
        params.retain(|p| p.name != *to);
        for p in params.iter_mut().filter(|p| p.name == *from) {
            let value = p.raw.split_once('=').map(|(_, v)| v);
            p.raw = match value {
                Some(v) => format!("{}={v}", encode(to)),
                None => encode(to),
            };
            p.name = to.clone();
        }
    }
    for (name, value) in &ops.set {
        match params.iter().position(|p| p.name == *name) {
            Some(first) => {
                params[first] = pair(name, value);
                let mut i = 0;
                params.retain(|p| {
                    i += 1;
                    i - 1 == first || p.name != *name
                });
            }
            None => params.push(pair(name, value)),
        }
    }
    for (name, value) in &ops.add {
        params.push(pair(name, value));
    }

    if params.is_empty() {
        None
    } else {
        Some(
            params
                .iter()
                .map(|p| p.raw.as_str())
                .collect::<Vec<_>>()
                .join("&"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(
        remove: &[&str],
        rename: &[(&str, &str)],
        set: &[(&str, &str)],
        add: &[(&str, &str)],
    ) -> PairOps {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        PairOps {
            remove: remove.iter().map(|s| s.to_string()).collect(),
            rename: pairs(rename),
            set: pairs(set),
            add: pairs(add),
        }
    }

    #[test]
    fn untouched_parameters_keep_their_text() {
        let o = ops(&["debug"], &[], &[], &[("tag", "a b")]);
        assert_eq!(
            apply(&o, Some("q=x%20y&debug=1&z=~")).as_deref(),
            Some("q=x%20y&z=~&tag=a+b")
        );
    }

    #[test]
    fn rename_set_and_add() {
        let o = ops(&[], &[("q", "search")], &[("page", "2")], &[("x", "1")]);
        assert_eq!(
            apply(&o, Some("page=1&q=rust&page=9&search=old")).as_deref(),
            Some("page=2&search=rust&x=1")
        );
        assert_eq!(apply(&o, None).as_deref(), Some("page=2&x=1"));
    }

    #[test]
    fn names_match_after_decoding_and_empty_result_is_none() {
        let o = ops(&["a b"], &[], &[], &[]);
        assert_eq!(apply(&o, Some("a+b=1&a%20b=2")), None);
        let o = ops(&[], &[("flag", "f")], &[], &[]);
        assert_eq!(apply(&o, Some("flag&x=1")).as_deref(), Some("f&x=1"));
    }
}
