//! A plugin's config file (JSON, or the TOML of its `[plugins.NAME.config]` table) as the JSON
//! text `init` receives.

use std::path::Path;

/// Parse a plugin config file into the JSON text `init` receives: a `.json` file as it is,
/// anything else as TOML (the `[plugins.NAME.config]` table's content, without the header).
pub fn config_json_from_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config {}: {e}", path.display()))?;
    config_json_from_text(&text, path.extension().is_some_and(|e| e == "json"))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Like [`config_json_from_file`] on text.
pub fn config_json_from_text(text: &str, json: bool) -> Result<String, String> {
    if json {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if !value.is_object() {
            return Err("the config must be a JSON object".to_owned());
        }
        return Ok(value.to_string());
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("not TOML: {e}"))?;
    serde_json::to_string(&table).map_err(|e| e.to_string())
}
