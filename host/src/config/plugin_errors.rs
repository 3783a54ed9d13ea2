//! A plugin's refusal of its own config, placed at TOML paths: `init` returns one string, and
//! the SDK (and the built-in plugins) write it as `invalid config: KEY: message`, several joined
//! by `; `. Each becomes an issue at `plugins.NAME.config.KEY`; a message without a key is the
//! whole table's (`plugins.NAME.config`), so plain strings from any plugin keep working.

use super::ConfigIssue;

/// The prefix the SDK puts before a config it could not parse.
const SDK_PREFIX: &str = "invalid config: ";

/// The issues of plugin `name`, whose `init` refused its config with `message`.
pub fn plugin_config_issues(name: &str, message: &str) -> Vec<ConfigIssue> {
    let table = format!("plugins.{name}.config");
    let message = message.strip_prefix(SDK_PREFIX).unwrap_or(message).trim();
    // Several errors joined by `; ` (the built-in plugins' way): a part that names a key starts
    // an issue; a part that does not continues the one before (a message may contain `; `).
    let mut issues: Vec<ConfigIssue> = Vec::new();
    for part in message.split("; ") {
        match (split_key(part), issues.last_mut()) {
            (Some((key, text)), _) => issues.push(issue(&table, key, text)),
            (None, Some(last)) => {
                last.message.push_str("; ");
                last.message.push_str(part);
            }
            (None, None) => issues.push(ConfigIssue {
                path: table.clone(),
                message: part.to_owned(),
            }),
        }
    }
    issues
}

fn issue(table: &str, key: &str, message: &str) -> ConfigIssue {
    let sep = if key.starts_with('[') { "" } else { "." };
    ConfigIssue {
        path: format!("{table}{sep}{key}"),
        message: message.to_owned(),
    }
}

/// `KEY: message` → (KEY, message), when KEY reads as a path into a TOML table: bare keys
/// (lower case, as config keys are written), quoted keys and `[N]` indexes, joined by dots.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut segments = 0;
    loop {
        match b.get(i)? {
            b'[' => {
                let close = i + text[i..].find(']')?;
                if close == i + 1 || !b[i + 1..close].iter().all(u8::is_ascii_digit) {
                    return None;
                }
                i = close + 1;
            }
            b'"' => {
                let mut j = i + 1;
                loop {
                    match b.get(j)? {
                        b'\\' => j += 2,
                        b'"' => break,
                        _ => j += 1,
                    }
                }
                i = j + 1;
            }
            _ => {
                let start = i;
                while b.get(i).is_some_and(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-')
                }) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
            }
        }
        segments += 1;
        match b.get(i)? {
            b'.' => i += 1,
            b'[' => {}
            b':' if b.get(i + 1) == Some(&b' ') && segments > 0 => {
                let rest = text[i + 2..].trim();
                return (!rest.is_empty()).then(|| (&text[..i], rest));
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(message: &str) -> Vec<String> {
        plugin_config_issues("idem", message)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn keys_become_toml_paths() {
        assert_eq!(
            issues("ttl_s: 0 is out of range"),
            ["plugins.idem.config.ttl_s: 0 is out of range"]
        );
        assert_eq!(
            issues("invalid config: limits[1].ttl_s: invalid value: integer `-1`, expected u32"),
            ["plugins.idem.config.limits[1].ttl_s: invalid value: integer `-1`, expected u32"]
        );
        assert_eq!(
            issues("invalid config: headers.\"x y\": invalid type"),
            ["plugins.idem.config.headers.\"x y\": invalid type"]
        );
        assert_eq!(
            issues("[0]: not a table"),
            ["plugins.idem.config[0]: not a table"]
        );
    }

    #[test]
    fn several_errors_are_several_issues() {
        assert_eq!(
            issues("limit: must be at least 1; period: unknown unit `y`"),
            [
                "plugins.idem.config.limit: must be at least 1",
                "plugins.idem.config.period: unknown unit `y`"
            ]
        );
    }

    #[test]
    fn plain_messages_belong_to_the_table() {
        assert_eq!(
            issues("invalid config: unknown field `nam`, expected `name`"),
            ["plugins.idem.config: unknown field `nam`, expected `name`"]
        );
        assert_eq!(
            issues("ValueError: bad split"),
            ["plugins.idem.config: ValueError: bad split"]
        );
        assert_eq!(
            issues("set `allow`, `deny` or both"),
            ["plugins.idem.config: set `allow`, `deny` or both"]
        );
        assert_eq!(
            issues("key: a; and then some; other: b"),
            [
                "plugins.idem.config.key: a; and then some",
                "plugins.idem.config.other: b"
            ]
        );
        assert_eq!(
            issues("set `allow` or `deny`; deny[0]: not a network"),
            [
                "plugins.idem.config: set `allow` or `deny`",
                "plugins.idem.config.deny[0]: not a network"
            ]
        );
    }
}
