use serde::de::DeserializeOwned;

/// Parse a plugin config from the JSON text the gateway passes to `init`, the way the SDK does
/// before calling [`crate::Plugin::init`]. An empty text is read as `{}`. The error is the one the
/// operator sees: `invalid config: <serde message>`. Handy for testing config types natively.
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| format!("invalid config: {e}"))
}

/// The config of a plugin that takes none: accepts an empty table and rejects any key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        name: String,
    }

    #[test]
    fn parses_and_reports_errors() {
        assert_eq!(
            parse_config::<Cfg>(r#"{"name":"a"}"#),
            Ok(Cfg { name: "a".into() })
        );
        let err = parse_config::<Cfg>(r#"{"nam":"a"}"#).expect_err("must fail");
        assert!(
            err.starts_with("invalid config: unknown field `nam`"),
            "{err}"
        );
        assert_eq!(parse_config::<NoConfig>(""), Ok(NoConfig {}));
        assert_eq!(parse_config::<NoConfig>("{}"), Ok(NoConfig {}));
        assert!(parse_config::<NoConfig>(r#"{"x":1}"#).is_err());
    }
}
