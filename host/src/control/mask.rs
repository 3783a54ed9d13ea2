//! Config text as a viewer sees it: secrets replaced by `"***"` with the admin API's rule
//! (`admin::looks_secret` keys at any depth, PEM blocks, passwords and secret parameters in
//! URLs), the rest of the file as written. Admins and operators, who can change the config,
//! read it whole.

use toml_edit::{DocumentMut, Item, Value};

use crate::admin::{looks_secret, mask_url_password};

/// `text` with its secrets masked; text that is not TOML is withheld whole.
pub fn mask_config(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return "# (not valid TOML: withheld from viewers)\n".to_owned();
    };
    mask_table(doc.as_table_mut(), false);
    doc.to_string()
}

fn mask_table(table: &mut dyn toml_edit::TableLike, secret: bool) {
    for (key, item) in table.iter_mut() {
        let inner = secret || looks_secret(key.get());
        mask_item(item, inner);
    }
}

fn mask_item(item: &mut Item, secret: bool) {
    match item {
        Item::Value(v) => mask_value(v, secret),
        Item::Table(t) => mask_table(t, secret),
        Item::ArrayOfTables(a) => a.iter_mut().for_each(|t| mask_table(t, secret)),
        Item::None => {}
    }
}

fn mask_value(value: &mut Value, secret: bool) {
    match value {
        Value::InlineTable(t) => mask_table(t, secret),
        Value::Array(a) => a.iter_mut().for_each(|v| mask_value(v, secret)),
        Value::String(s) => {
            let text = s.value();
            let masked = if secret || text.contains("-----BEGIN") {
                Some("***".to_owned())
            } else if text.contains("://") {
                Some(mask_url_password(text))
            } else {
                None
            };
            if let Some(m) = masked {
                *value = Value::from(m);
            }
        }
        _ if secret => *value = Value::from("***"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        let text = "# keep me\n[state]\nurl = \"redis://u:pw@h:6379\"\n[plugins.auth.config]\njwt = { issuers = [{ keys = [{ secret = \"s3cr3t-value-long-enough\" }] }] }\nrealm = \"api\"\n";
        let masked = mask_config(text);
        assert!(
            masked.contains("# keep me") && masked.contains("realm = \"api\""),
            "{masked}"
        );
        assert!(
            !masked.contains("s3cr3t") && !masked.contains(":pw@"),
            "{masked}"
        );
    }
}
