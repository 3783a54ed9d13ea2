//! A route's `deprecated`, `sunset` and `deprecation_link`: dates in RFC 3339 (a string or a
//! TOML date-time) with an offset, a sunset no earlier than the deprecation, an http(s) link;
//! checked here and turned into ready header values (`model::Deprecation`).

use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Validator;
use crate::config::model::Deprecation;
use crate::config::raw::RawRoute;

impl Validator<'_> {
    /// The route's deprecation headers: `Ok(None)` when it sets none of the keys, `Err(())`
    /// when any is wrong (each problem is in the issues).
    pub(super) fn route_deprecation(
        &mut self,
        path: &str,
        raw: &RawRoute,
    ) -> Result<Option<Arc<Deprecation>>, ()> {
        if raw.deprecated.is_none() && raw.sunset.is_none() && raw.deprecation_link.is_none() {
            return Ok(None);
        }
        let deprecated = self.route_date(path, "deprecated", raw.deprecated.as_ref());
        let sunset = self.route_date(path, "sunset", raw.sunset.as_ref());
        let link_path = format!("{path}.deprecation_link");
        let link = match raw.deprecation_link.as_deref() {
            Some(link) if !is_http_url(link) => {
                self.issues.push(
                    &link_path,
                    format!("`{link}` is not an http:// or https:// URL"),
                );
                Err(())
            }
            Some(_) if raw.deprecated.is_none() => {
                self.issues.push(
                    &link_path,
                    "a deprecation link needs `deprecated` (the date the route was deprecated)",
                );
                Err(())
            }
            other => Ok(other),
        };
        let (Ok(deprecated), Ok(sunset), Ok(link)) = (deprecated, sunset, link) else {
            return Err(());
        };
        if let (Some(d), Some(s)) = (deprecated, sunset)
            && s < d
        {
            self.issues.push(
                format!("{path}.sunset"),
                "the sunset is before the deprecation date (`deprecated`)",
            );
            return Err(());
        }
        match Deprecation::new(deprecated, sunset, link) {
            Ok(d) => Ok(Some(Arc::new(d))),
            Err(why) => {
                self.issues.push(link_path, why);
                Err(())
            }
        }
    }

    /// `deprecated` or `sunset`: absent, or an RFC 3339 date-time with an offset.
    fn route_date(
        &mut self,
        path: &str,
        key: &str,
        value: Option<&toml::Value>,
    ) -> Result<Option<OffsetDateTime>, ()> {
        let text = match value {
            None => return Ok(None),
            Some(toml::Value::String(s)) => s.clone(),
            Some(toml::Value::Datetime(d)) => d.to_string(),
            Some(toml::Value::Boolean(_)) if key == "deprecated" => {
                self.issues.push(
                    format!("{path}.{key}"),
                    "the Deprecation header carries a date (RFC 9745): write the date the route \
                     was deprecated, e.g. \"2026-06-30T00:00:00Z\"",
                );
                return Err(());
            }
            Some(other) => {
                self.issues.push(
                    format!("{path}.{key}"),
                    format!(
                        "expected an RFC 3339 date such as \"2027-01-01T00:00:00Z\", found a {}",
                        other.type_str()
                    ),
                );
                return Err(());
            }
        };
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(Some)
            .map_err(|_| {
                self.issues.push(
                    format!("{path}.{key}"),
                    format!(
                        "`{text}` is not an RFC 3339 date-time with an offset, such as \
                         \"2027-01-01T00:00:00Z\""
                    ),
                );
            })
    }
}

/// `http://` or `https://` followed by a host (scheme case-insensitive).
fn is_http_url(link: &str) -> bool {
    let lower = link.get(..8).unwrap_or(link).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &link[8..]
    } else if lower.starts_with("http://") {
        &link[7..]
    } else {
        return false;
    };
    !rest.is_empty() && !rest.starts_with('/')
}
