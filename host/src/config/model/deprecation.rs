//! A route's deprecation (`deprecated`, `sunset`, `deprecation_link`): the response headers
//! that tell clients its API version is deprecated (`Deprecation`, RFC 9745), when it goes away
//! (`Sunset`, RFC 8594) and where to read about it (`Link; rel="deprecation"`).
//!
//! The header values are built once when the config is validated, so serving a response only
//! clones them; a reload builds new ones with its new routing table.

use http::header::LINK;
use http::{HeaderMap, HeaderName, HeaderValue};
use time::{OffsetDateTime, UtcOffset};

/// `Deprecation` (RFC 9745 §2.1).
pub static DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
/// `Sunset` (RFC 8594 §3).
pub static SUNSET: HeaderName = HeaderName::from_static("sunset");

/// The deprecation headers of one route, ready to add to its responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// `Deprecation: @<unix seconds>`.
    pub deprecation: Option<HeaderValue>,
    /// `Sunset: <IMF-fixdate>`.
    pub sunset: Option<HeaderValue>,
    /// `Link: <url>; rel="deprecation"`.
    pub link: Option<HeaderValue>,
}

impl Deprecation {
    /// The headers for these settings; `Err` names what cannot be a header value (a link with
    /// control characters or `>`).
    pub fn new(
        deprecated: Option<OffsetDateTime>,
        sunset: Option<OffsetDateTime>,
        link: Option<&str>,
    ) -> Result<Self, String> {
        let value = |text: String| {
            HeaderValue::from_str(&text)
                .map_err(|_| format!("`{text}` is not a valid header value"))
        };
        if link.is_some_and(|l| l.contains(['<', '>'])) {
            return Err("a link cannot contain `<` or `>`".to_owned());
        }
        Ok(Deprecation {
            deprecation: deprecated.map(structured_date).map(value).transpose()?,
            sunset: sunset.map(http_date).map(value).transpose()?,
            link: link
                .map(|l| format!("<{l}>; rel=\"deprecation\""))
                .map(value)
                .transpose()?,
        })
    }

    /// Add the headers to a response of the route. A `Deprecation` or `Sunset` the upstream (or a
    /// plugin) already set is kept: the service knows its own schedule best. The link is added
    /// beside any other `Link` values unless that exact value is already there.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in [(&DEPRECATION, &self.deprecation), (&SUNSET, &self.sunset)] {
            if let Some(value) = value
                && !headers.contains_key(name)
            {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(link) = &self.link
            && !headers.get_all(LINK).iter().any(|v| v == link)
        {
            headers.append(LINK, link.clone());
        }
    }
}

/// An RFC 9651 Structured Field Date, as RFC 9745 wants it: `@` and the Unix seconds.
pub fn structured_date(at: OffsetDateTime) -> String {
    format!("@{}", at.unix_timestamp())
}

/// An HTTP-date in the preferred IMF-fixdate form (RFC 9110 §5.6.7), as RFC 8594 wants it:
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let weekday = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        [usize::from(at.weekday().number_days_from_monday())];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][usize::from(u8::from(at.month()) - 1)];
    format!(
        "{weekday}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        at.day(),
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use time::format_description::well_known::Rfc3339;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn dates_in_the_rfc_forms() {
        // RFC 9110's own example, given with an offset to show it is converted to GMT.
        assert_eq!(
            http_date(at("1994-11-06T10:49:37+02:00")),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(at("2027-01-01T00:00:00Z")),
            "Fri, 01 Jan 2027 00:00:00 GMT"
        );
        // RFC 9745 §2.1's example.
        assert_eq!(structured_date(at("2023-06-30T23:59:59Z")), "@1688169599");
        assert_eq!(structured_date(at("1970-01-01T00:00:00Z")), "@0");
    }

    #[test]
    fn apply_adds_missing_headers_and_keeps_the_upstreams() {
        let d = Deprecation::new(
            Some(at("2026-06-30T00:00:00Z")),
            Some(at("2027-01-01T00:00:00Z")),
            Some("https://example.com/v1"),
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            SUNSET.clone(),
            HeaderValue::from_static("Sat, 01 Jan 2028 00:00:00 GMT"),
        );
        headers.insert(LINK, HeaderValue::from_static("</next>; rel=\"next\""));
        d.apply(&mut headers);
        d.apply(&mut headers);
        assert_eq!(headers[&DEPRECATION], "@1782777600");
        assert_eq!(headers[&SUNSET], "Sat, 01 Jan 2028 00:00:00 GMT");
        let links: Vec<_> = headers.get_all(LINK).iter().collect();
        assert_eq!(
            links,
            [
                "</next>; rel=\"next\"",
                "<https://example.com/v1>; rel=\"deprecation\""
            ]
        );
    }

    #[test]
    fn a_link_that_cannot_be_a_header_is_refused() {
        assert!(Deprecation::new(None, None, Some("https://a/\n")).is_err());
        assert!(Deprecation::new(None, None, Some("https://a/>")).is_err());
    }
}
