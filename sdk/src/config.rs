use serde::de::DeserializeOwned;

/// Parse a plugin config from the JSON text the gateway passes to `init`, the way the SDK does
/// before calling [`crate::Plugin::init`]. An empty text is read as `{}`. The error is the one the
/// operator sees: `invalid config: PATH: <serde message>`, where PATH is the key inside the
/// plugin's config table (`ttl_s`, `rules[2].match`; left out when the whole table is wrong).
/// The gateway prints it at its TOML path: `plugins.NAME.config.ttl_s: ...`. Handy for testing
/// config types natively.
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = toml_path(e.path());
        // The position is in JSON the gateway made from the TOML: no use to the operator.
        let message = e.into_inner().to_string();
        let message = match message.rfind(" at line ") {
            Some(at) => &message[..at],
            None => &message,
        };
        if path.is_empty() {
            format!("invalid config: {message}")
        } else {
            format!("invalid config: {path}: {message}")
        }
    })
}

/// A path as TOML writes it: `a.b[0]."key with spaces"`; empty for the root.
fn toml_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if bare {
                    out.push_str(key);
                } else {
                    out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                }
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// The config of a plugin that takes none: accepts an empty table and rejects any key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        name: String,
        #[serde(default)]
        limits: Vec<Limit>,
        #[serde(default)]
        headers: BTreeMap<String, u16>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Limit {
        ttl_s: u32,
    }

    #[test]
    fn parses_and_reports_errors() {
        assert_eq!(
            parse_config::<Cfg>(r#"{"name":"a"}"#),
            Ok(Cfg {
                name: "a".into(),
                limits: vec![],
                headers: BTreeMap::new()
            })
        );
        // An unknown key is named where it is, so the operator sees the typo's place.
        let err = parse_config::<Cfg>(r#"{"nam":"a"}"#).expect_err("must fail");
        assert!(
            err.starts_with("invalid config: nam: unknown field `nam`"),
            "{err}"
        );
        assert_eq!(parse_config::<NoConfig>(""), Ok(NoConfig {}));
        assert_eq!(parse_config::<NoConfig>("{}"), Ok(NoConfig {}));
        assert!(parse_config::<NoConfig>(r#"{"x":1}"#).is_err());
    }

    #[test]
    fn errors_name_the_key_without_a_json_position() {
        let err = parse_config::<Cfg>(r#"{"name":"a","limits":[{"ttl_s":1},{"ttl_s":-1}]}"#)
            .expect_err("must fail");
        assert_eq!(
            err,
            "invalid config: limits[1].ttl_s: invalid value: integer `-1`, expected u32"
        );
        let err =
            parse_config::<Cfg>(r#"{"name":"a","headers":{"x y":"no"}}"#).expect_err("must fail");
        assert_eq!(
            err,
            "invalid config: headers.\"x y\": invalid type: string \"no\", expected u16"
        );
    }
}
