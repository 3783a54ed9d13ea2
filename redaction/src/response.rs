//! A response's rules around its body, the same in the plugin and in the gateway: which
//! statuses carry no body to mask, and what a masked body's headers become.
//!
//! Once values in a body are masked, a digest of the body no longer describes it, so the digest
//! headers go; a strong `ETag` becomes weak (`W/`), because the masked body stands for the same
//! content but is no longer byte for byte the one the validator named.

/// Body-integrity headers that no longer describe a masked body.
pub const DIGEST_HEADERS: &[&str] = &["content-md5", "digest", "content-digest", "repr-digest"];

/// Whether a response with this status may carry a body to mask (not 1xx, 204 or 304).
pub fn has_body(status: u16) -> bool {
    status >= 200 && status != 204 && status != 304
}

/// The weak form of a strong `ETag`; `None` when it is weak already.
pub fn weak_etag(etag: &str) -> Option<String> {
    (!etag.starts_with("W/")).then(|| format!("W/{etag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_without_a_body() {
        for status in [100, 101, 199, 204, 304] {
            assert!(!has_body(status), "{status}");
        }
        for status in [200, 201, 206, 301, 404, 500] {
            assert!(has_body(status), "{status}");
        }
    }

    #[test]
    fn strong_etags_become_weak_once() {
        assert_eq!(weak_etag("\"abc\"").as_deref(), Some("W/\"abc\""));
        assert_eq!(weak_etag("W/\"abc\""), None);
    }
}
