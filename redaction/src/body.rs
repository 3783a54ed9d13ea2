//! One body through redaction: choose JSON, text or pass-through from the Content-Type, undo
//! the Content-Encoding (gzip, deflate), redact, and encode again. Anything that cannot be
//! looked into (an unknown encoding, a corrupt or oversized compressed body, UTF-16 text) is
//! refused, never passed through unredacted. Plain Rust; in the plugin (Wasm), a JSON document
//! goes to the gateway's native copy of the config when there is one (`redact_json`).

use std::borrow::Cow;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};

use crate::config::{InvalidJson, Settings};
use crate::json;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A Content-Encoding that is not supported, or compressed bodies while `decompress` is off.
    Encoding(String),
    /// A compressed body that does not decompress.
    Corrupt(String),
    /// The decompressed body is larger than `max_decompressed_bytes`.
    TooLarge(usize),
    /// A body labelled JSON that does not parse, with `invalid_json = "refuse"`.
    InvalidJson(String),
    /// A text charset the detectors cannot read (UTF-16, UTF-32).
    Charset(String),
}

impl Refusal {
    /// The error code for the JSON body and the metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Encoding(_) => "redact_unsupported_encoding",
            Refusal::Corrupt(_) => "redact_corrupt_body",
            Refusal::TooLarge(_) => "redact_body_too_large",
            Refusal::InvalidJson(_) => "redact_invalid_json",
            Refusal::Charset(_) => "redact_unsupported_charset",
        }
    }

    /// The status for a refused request body (a response is always refused with 502).
    pub fn request_status(&self) -> u16 {
        match self {
            Refusal::Encoding(_) | Refusal::Charset(_) => 415,
            Refusal::TooLarge(_) => 413,
            Refusal::Corrupt(_) | Refusal::InvalidJson(_) => 400,
        }
    }

    /// A message for the client.
    pub fn message(&self) -> String {
        match self {
            Refusal::Encoding(m) | Refusal::Corrupt(m) | Refusal::Charset(m) => m.clone(),
            Refusal::TooLarge(limit) => {
                format!("the decompressed body is larger than {limit} bytes, the redaction limit")
            }
            Refusal::InvalidJson(e) => {
                format!("the body is labelled JSON but does not parse ({e}); it cannot be redacted")
            }
        }
    }
}

/// What happened to a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to mask: keep the body (and its encoding) as it is.
    Unchanged,
    /// The redacted body, encoded as the original was.
    Replaced(Vec<u8>),
    /// Not looked into, by config (a binary content type).
    Skipped,
    /// Refused.
    Refused(Refusal),
}

/// Extra facts about a pass, for metrics.
#[derive(Debug, Default)]
pub struct Notes {
    /// A body labelled JSON did not parse and was redacted as text.
    pub json_as_text: bool,
}

/// How the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Text,
    /// No Content-Type: JSON if it parses, else text.
    Sniff,
    Skip,
}

fn format_of(content_type: Option<&str>, skip: &[String]) -> (Format, Option<String>) {
    let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) else {
        return (Format::Sniff, None);
    };
    let lower = ct.to_ascii_lowercase();
    let mut params = lower.split(';');
    let mime = params.next().unwrap_or("").trim();
    let charset = params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == "charset").then(|| v.trim().trim_matches('"').to_owned())
    });
    if skip.iter().any(|s| mime.starts_with(s.as_str())) {
        return (Format::Skip, charset);
    }
    let json = mime == "application/json"
        || mime == "text/json"
        || (mime.starts_with("application/") && mime.ends_with("+json"));
    (if json { Format::Json } else { Format::Text }, charset)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

/// The codings of a Content-Encoding header (all its values), in the order they were applied.
fn codings(values: &[String], decompress: bool) -> Result<Vec<Coding>, Refusal> {
    let mut out = Vec::new();
    for token in values.iter().flat_map(|v| v.split(',')) {
        let token = token.trim().to_ascii_lowercase();
        let coding = match token.as_str() {
            "" | "identity" => continue,
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            other => {
                return Err(Refusal::Encoding(format!(
                    "content encoding `{other}` is not supported by redaction (gzip and deflate are)"
                )));
            }
        };
        if !decompress {
            return Err(Refusal::Encoding(format!(
                "compressed bodies (`{token}`) are refused: decompression is disabled for redaction"
            )));
        }
        out.push(coding);
    }
    Ok(out)
}

fn decode(body: &[u8], coding: Coding, limit: usize) -> Result<Vec<u8>, Refusal> {
    let corrupt = |e: std::io::Error| {
        Refusal::Corrupt(format!("the compressed body does not decompress: {e}"))
    };
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    match coding {
        Coding::Gzip => {
            MultiGzDecoder::new(body)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(corrupt)?;
        }
        Coding::Deflate => {
            // HTTP's "deflate" is zlib-wrapped; some servers send raw deflate.
            if ZlibDecoder::new(body)
                .take(cap)
                .read_to_end(&mut out)
                .is_err()
            {
                out.clear();
                DeflateDecoder::new(body)
                    .take(cap)
                    .read_to_end(&mut out)
                    .map_err(corrupt)?;
            }
        }
    }
    if out.len() > limit {
        return Err(Refusal::TooLarge(limit));
    }
    Ok(out)
}

fn encode(body: &[u8], coding: Coding) -> std::io::Result<Vec<u8>> {
    match coding {
        Coding::Gzip => {
            let mut e = GzEncoder::new(Vec::with_capacity(body.len() / 3), Compression::default());
            e.write_all(body)?;
            e.finish()
        }
        Coding::Deflate => {
            let mut e =
                ZlibEncoder::new(Vec::with_capacity(body.len() / 3), Compression::default());
            e.write_all(body)?;
            e.finish()
        }
    }
}

/// Whether a body with this Content-Type and Content-Encoding is a JSON document as it stands:
/// labelled JSON, no charset other than UTF-8 named, not compressed. The plugin has the gateway
/// mask such a response body where it holds it (contract 0.2 `redaction.redact-response`).
pub fn is_plain_json(
    settings: &Settings,
    content_type: Option<&str>,
    content_encoding: &[String],
) -> bool {
    let (format, charset) = format_of(content_type, &settings.skip_content_types);
    format == Format::Json
        && charset.as_deref().is_none_or(|c| !unreadable_charset(c))
        && codings(content_encoding, settings.decompress).is_ok_and(|c| c.is_empty())
}

/// A charset the detectors cannot read as it stands (UTF-16, UTF-32): such bodies are refused.
fn unreadable_charset(charset: &str) -> bool {
    charset.starts_with("utf-16") || charset.starts_with("utf-32")
}

/// Redact one body. `content_encoding` holds every value of the Content-Encoding header.
pub fn redact(
    settings: &Settings,
    content_type: Option<&str>,
    content_encoding: &[String],
    body: &[u8],
    counts: &mut [u64],
    notes: &mut Notes,
) -> Outcome {
    let (format, charset) = format_of(content_type, &settings.skip_content_types);
    if format == Format::Skip {
        return Outcome::Skipped;
    }
    let codings = match codings(content_encoding, settings.decompress) {
        Ok(c) => c,
        Err(r) => return Outcome::Refused(r),
    };
    let mut plain: Cow<'_, [u8]> = Cow::Borrowed(body);
    for coding in codings.iter().rev() {
        match decode(&plain, *coding, settings.max_decompressed) {
            Ok(d) => plain = Cow::Owned(d),
            Err(r) => return Outcome::Refused(r),
        }
    }
    let redacted = match redact_plain(settings, format, charset.as_deref(), &plain, counts, notes) {
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::Unchanged,
        Err(r) => return Outcome::Refused(r),
    };
    let mut out = redacted;
    for coding in &codings {
        match encode(&out, *coding) {
            Ok(e) => out = e,
            Err(e) => {
                return Outcome::Refused(Refusal::Corrupt(format!("re-compressing failed: {e}")));
            }
        }
    }
    Outcome::Replaced(out)
}

fn redact_plain(
    settings: &Settings,
    format: Format,
    charset: Option<&str>,
    body: &[u8],
    counts: &mut [u64],
    notes: &mut Notes,
) -> Result<Option<Vec<u8>>, Refusal> {
    if let Some(cs) = charset.filter(|c| unreadable_charset(c)) {
        return Err(Refusal::Charset(format!(
            "charset `{cs}` cannot be redacted; send UTF-8"
        )));
    }
    let looks_json = || {
        body.iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{' || *b == b'[')
    };
    if format == Format::Json || (format == Format::Sniff && looks_json()) {
        match redact_json(settings, body, counts) {
            Ok(out) => return Ok(out),
            Err(e) if format == Format::Json && settings.invalid_json == InvalidJson::Refuse => {
                return Err(Refusal::InvalidJson(e));
            }
            Err(_) => notes.json_as_text = format == Format::Json,
        }
    }
    Ok(redact_text(settings, body, counts))
}

/// A JSON document through the field rules and detectors: `Ok(None)` when nothing was masked,
/// `Err` with the reason when it is not a UTF-8 JSON document (nothing is counted then). In the
/// plugin the gateway's native copy of the config does it, when there is one and it takes the
/// document.
fn redact_json(
    settings: &Settings,
    body: &[u8],
    counts: &mut [u64],
) -> Result<Option<Vec<u8>>, String> {
    #[cfg(target_arch = "wasm32")]
    if let Some(policy) = &settings.gateway
        && let Ok(done) = policy.redact_json(body)
        && done.counts.len() == counts.len()
    {
        use tollgate_sdk::redaction::JsonOutcome;
        for (count, add) in counts.iter_mut().zip(&done.counts) {
            *count = count.saturating_add(*add);
        }
        return match done.outcome {
            JsonOutcome::Unchanged => Ok(None),
            JsonOutcome::Masked(document) => Ok(Some(document)),
            JsonOutcome::Invalid(why) => Err(why),
        };
    }
    redact_json_here(settings, body, counts)
}

/// [`redact_json`] in this process: what the gateway runs for the plugin's `redaction` import.
pub fn redact_json_here(
    settings: &Settings,
    body: &[u8],
    counts: &mut [u64],
) -> Result<Option<Vec<u8>>, String> {
    let rules = json::Rules {
        fields: &settings.fields,
        detectors: &settings.detectors,
        masker: &settings.masker,
    };
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    json::redact(text, rules, counts).map(|out| out.map(String::into_bytes))
}

/// Detectors over text. UTF-8 is scanned as it is; other bytes are read one character per byte
/// (Latin-1), so ASCII-compatible charsets are scanned too and untouched bytes come back as
/// they were.
fn redact_text(settings: &Settings, body: &[u8], counts: &mut [u64]) -> Option<Vec<u8>> {
    if let Ok(text) = std::str::from_utf8(body) {
        return settings
            .detectors
            .redact(text, &settings.masker, counts)
            .map(String::into_bytes);
    }
    let wide: String = body.iter().map(|&b| char::from(b)).collect();
    let out = settings.detectors.redact(&wide, &settings.masker, counts)?;
    Some(
        out.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawConfig, validate};
    use serde_json::json;

    fn settings(v: serde_json::Value) -> Settings {
        let raw: RawConfig = tollgate_sdk::parse_config(&v.to_string()).expect("parses");
        validate(raw).expect("valid")
    }

    fn run(s: &Settings, ct: Option<&str>, ce: &[&str], body: &[u8]) -> Outcome {
        let ce: Vec<String> = ce.iter().map(|v| (*v).to_owned()).collect();
        let mut counts = vec![0; s.rule_names.len()];
        redact(s, ct, &ce, body, &mut counts, &mut Notes::default())
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        encode(b, Coding::Gzip).expect("gzip")
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        decode(b, Coding::Gzip, usize::MAX).expect("gunzip")
    }

    fn basic() -> Settings {
        settings(json!({"fields": ["ssn"], "detectors": ["email"]}))
    }

    #[test]
    fn json_text_and_skipped_types() {
        let s = basic();
        assert_eq!(
            run(
                &s,
                Some("application/json; charset=utf-8"),
                &[],
                br#"{"ssn":"1"}"#
            ),
            Outcome::Replaced(br#"{"ssn":"[REDACTED]"}"#.to_vec())
        );
        assert_eq!(
            run(&s, Some("application/problem+json"), &[], br#"{"ssn":"1"}"#),
            Outcome::Replaced(br#"{"ssn":"[REDACTED]"}"#.to_vec())
        );
        assert_eq!(
            run(&s, Some("text/plain"), &[], b"ssn a@example.com"),
            Outcome::Replaced(b"ssn [REDACTED]".to_vec())
        );
        assert_eq!(
            run(&s, Some("image/png"), &[], b"a@example.com"),
            Outcome::Skipped
        );
        assert_eq!(
            run(&s, Some("text/plain"), &[], b"nothing here"),
            Outcome::Unchanged
        );
    }

    #[test]
    fn without_a_content_type_json_is_sniffed() {
        let s = basic();
        assert_eq!(
            run(&s, None, &[], br#" {"ssn":"1"}"#),
            Outcome::Replaced(br#" {"ssn":"[REDACTED]"}"#.to_vec())
        );
        assert_eq!(
            run(&s, None, &[], b"[not json a@example.com"),
            Outcome::Replaced(b"[not json [REDACTED]".to_vec())
        );
    }

    #[test]
    fn invalid_json_is_text_or_refused() {
        let s = basic();
        assert_eq!(
            run(&s, Some("application/json"), &[], b"{oops a@example.com"),
            Outcome::Replaced(b"{oops [REDACTED]".to_vec())
        );
        let strict = settings(json!({"detectors": ["email"], "invalid_json": "refuse"}));
        let Outcome::Refused(r) = run(&strict, Some("application/json"), &[], b"{oops") else {
            panic!("must refuse");
        };
        assert_eq!((r.code(), r.request_status()), ("redact_invalid_json", 400));
    }

    #[test]
    fn gzip_and_deflate_round_trip() {
        let s = basic();
        let Outcome::Replaced(out) = run(
            &s,
            Some("application/json"),
            &["gzip"],
            &gzip(br#"{"ssn":"1"}"#),
        ) else {
            panic!("must redact");
        };
        assert_eq!(gunzip(&out), br#"{"ssn":"[REDACTED]"}"#);

        let zlib = encode(b"to a@example.com", Coding::Deflate).expect("zlib");
        let Outcome::Replaced(out) = run(&s, Some("text/plain"), &["deflate"], &zlib) else {
            panic!("must redact");
        };
        let mut text = Vec::new();
        ZlibDecoder::new(&out[..])
            .read_to_end(&mut text)
            .expect("zlib");
        assert_eq!(text, b"to [REDACTED]");

        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
        raw.write_all(b"to a@example.com").expect("write");
        let raw = raw.finish().expect("deflate");
        assert!(matches!(
            run(&s, Some("text/plain"), &["deflate"], &raw),
            Outcome::Replaced(_)
        ));

        // Two codings, applied in order, undone in reverse.
        let twice = encode(&gzip(b"a@example.com"), Coding::Deflate).expect("twice");
        let Outcome::Replaced(out) = run(&s, Some("text/plain"), &["gzip, deflate"], &twice) else {
            panic!("must redact");
        };
        assert_eq!(
            gunzip(&decode(&out, Coding::Deflate, 1000).expect("deflate")),
            b"[REDACTED]"
        );
    }

    #[test]
    fn an_unchanged_compressed_body_keeps_its_bytes() {
        let s = basic();
        assert_eq!(
            run(&s, Some("text/plain"), &["gzip"], &gzip(b"clean")),
            Outcome::Unchanged
        );
    }

    #[test]
    fn encodings_that_cannot_be_looked_into_are_refused() {
        let s = basic();
        for (ce, code) in [
            ("br", "redact_unsupported_encoding"),
            ("gzip, zstd", "redact_unsupported_encoding"),
        ] {
            let Outcome::Refused(r) = run(&s, Some("text/plain"), &[ce], b"x") else {
                panic!("{ce} must be refused");
            };
            assert_eq!(r.code(), code);
            assert!(r.message().contains("not supported"), "{}", r.message());
        }
        let Outcome::Refused(r) = run(&s, Some("text/plain"), &["gzip"], b"not gzip") else {
            panic!("corrupt gzip must be refused");
        };
        assert_eq!(r.code(), "redact_corrupt_body");

        let off = settings(json!({"detectors": ["email"], "decompress": false}));
        let Outcome::Refused(r) = run(&off, Some("text/plain"), &["gzip"], &gzip(b"a@example.com"))
        else {
            panic!("must refuse");
        };
        assert_eq!(
            (r.code(), r.request_status()),
            ("redact_unsupported_encoding", 415)
        );
        assert!(
            r.message().contains("decompression is disabled"),
            "{}",
            r.message()
        );
        // Identity is no encoding at all.
        assert!(matches!(
            run(&off, Some("text/plain"), &["identity"], b"a@example.com"),
            Outcome::Replaced(_)
        ));
    }

    #[test]
    fn decompression_bombs_stop_at_the_limit() {
        let s = settings(json!({"detectors": ["email"], "max_decompressed_bytes": 1000}));
        let bomb = gzip(&vec![b'a'; 1_000_000]);
        assert!(bomb.len() < 5000);
        let Outcome::Refused(r) = run(&s, Some("text/plain"), &["gzip"], &bomb) else {
            panic!("must refuse");
        };
        assert_eq!(
            (r.code(), r.request_status()),
            ("redact_body_too_large", 413)
        );
        assert!(matches!(
            run(&s, Some("text/plain"), &["gzip"], &gzip(&[b'a'; 1000])),
            Outcome::Unchanged
        ));
    }

    #[test]
    fn charsets() {
        let s = basic();
        let Outcome::Refused(r) = run(
            &s,
            Some("text/plain; charset=UTF-16"),
            &[],
            b"\xff\xfea\x00",
        ) else {
            panic!("must refuse");
        };
        assert_eq!(r.code(), "redact_unsupported_charset");
        // Latin-1 bytes around a match come back as they were.
        assert_eq!(
            run(
                &s,
                Some("text/plain; charset=iso-8859-1"),
                &[],
                b"caf\xe9 a@example.com \xff"
            ),
            Outcome::Replaced(b"caf\xe9 [REDACTED] \xff".to_vec())
        );
    }
}
