//! Tests of [`crate::detect`]: each built-in detector, its checks and edges, merging, custom
//! patterns, canonical forms.

use super::*;
use crate::finders::luhn;

fn all() -> Detectors {
    let list = BUILTIN
        .iter()
        .enumerate()
        .map(|(i, name)| Detector::builtin(name, Style::Full, i).expect("builtin"))
        .collect();
    Detectors::new(list)
}

fn masker() -> Masker {
    Masker::new("[X]".into(), 4, Some(b"key-key-key-key-key"))
}

/// Redact with every built-in detector; returns the text and the counts per detector name.
fn run(text: &str) -> (String, Vec<(&'static str, u64)>) {
    let mut counts = vec![0; BUILTIN.len()];
    let out = all()
        .redact(text, &masker(), &mut counts)
        .unwrap_or_else(|| text.to_owned());
    let named = BUILTIN
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| (*name, n))
        .collect();
    (out, named)
}

#[test]
fn emails() {
    assert_eq!(
        run("mail Alice.Smith+tag@mail.example.co.uk now").0,
        "mail [X] now"
    );
    assert_eq!(run("not@an-address").0, "not@an-address");
}

#[test]
fn cards_must_pass_luhn() {
    assert_eq!(run("card 4111 1111 1111 1111.").0, "card [X].");
    assert_eq!(run("4111-1111-1111-1111").0, "[X]");
    assert_eq!(run("id=5500005555555559&x").0, "id=[X]&x");
    // One digit off: not a card, and not anything else either.
    assert_eq!(run("4111111111111112").0, "4111111111111112");
    assert_eq!(run("order 1234567890123456").0, "order 1234567890123456");
    // Digits glued to more digits are part of a longer number.
    assert_eq!(run("41111111111111110").0, "41111111111111110");
}

#[test]
fn a_card_followed_by_other_numbers_is_still_found() {
    assert_eq!(run("4111 1111 1111 1111 2026 11").0, "[X] 2026 11");
    assert_eq!(
        run("ids 12 4111 1111 1111 1111").1,
        vec![("card", 1)],
        "the card inside the run is found"
    );
}

#[test]
fn luhn_known_values() {
    for good in ["4111111111111111", "378282246310005", "6011111111111117"] {
        assert!(luhn(good.as_bytes()), "{good}");
    }
    for bad in ["4111111111111121", "1234567812345678", "12a4"] {
        assert!(!luhn(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn ibans_pass_mod_97() {
    assert_eq!(
        run("pay DE89 3704 0044 0532 0130 00 today").0,
        "pay [X] today"
    );
    assert_eq!(run("GB82WEST12345698765432").0, "[X]");
    assert_eq!(
        run("DE89370400440532013000 THE END").0,
        "[X] THE END",
        "greedy candidate is cut back to the valid IBAN"
    );
    assert_eq!(run("DE00370400440532013000").1, vec![]);
}

#[test]
fn ssns_skip_never_issued_ranges() {
    assert_eq!(run("ssn 123-45-6789").0, "ssn [X]");
    assert_eq!(run("000-12-3456 666-12-3456 912-34-5678").1, vec![]);
    assert_eq!(run("1123-45-6789").1, vec![]);
}

#[test]
fn phones() {
    assert_eq!(run("call +44 20 7946 0958, please").0, "call [X], please");
    assert_eq!(run("(555) 123-4567").0, "[X]");
    assert_eq!(run("tel 555-123-4567.").0, "tel [X].");
    // E.164 has at most 15 digits: trailing groups are dropped until the number fits.
    assert_eq!(run("+1 555 123 4567 2026 11 26 7").0, "[X] 11 26 7");
    assert_eq!(run("+1 555 123 4567 and more").0, "[X] and more");
    // Dates, versions and short numbers are not phones.
    assert_eq!(run("2026-11-26 v1.234.567.8901 +123").1, vec![]);
}

#[test]
fn ip_addresses() {
    assert_eq!(run("from 203.0.113.7, ok").0, "from [X], ok");
    assert_eq!(run("peer 2001:db8::1.").0, "peer [X].");
    assert_eq!(run("[::ffff:192.0.2.1]:80").0, "[[X]]:80");
    assert_eq!(run("1.2.3.4.5 999.1.1.1 at 10:30:00").1, vec![]);
    assert_eq!(run("mac 00:1a:2b:3c:4d:5e").1, vec![]);
}

#[test]
fn masks_are_not_scanned_again() {
    let list = vec![
        Detector::builtin("email", Style::Hash, 0).expect("email"),
        Detector::builtin("phone", Style::Full, 1).expect("phone"),
        Detector::builtin("card", Style::Full, 2).expect("card"),
    ];
    let mut counts = vec![0; 3];
    let out = Detectors::new(list)
        .redact("a@example.com", &masker(), &mut counts)
        .expect("match");
    assert!(out.starts_with("hmac:"), "{out}");
    assert_eq!(counts, vec![1, 0, 0]);
}

#[test]
fn custom_patterns_and_empty_matches() {
    let list = vec![
        Detector::custom("EMP-[0-9]{6}", Style::Partial, 0).expect("compiles"),
        Detector::custom("x*", Style::Full, 1).expect("compiles"),
    ];
    let mut counts = vec![0; 2];
    let out = Detectors::new(list).redact("id EMP-123456 y", &masker(), &mut counts);
    assert_eq!(out.as_deref(), Some("id ****3456 y"));
    assert_eq!(counts, vec![1, 0]);
}

#[test]
fn oversized_patterns_are_refused() {
    let err = Detector::custom("(?:[a-z]{1,100}){1,100}", Style::Full, 0).expect_err("big");
    assert!(err.contains("size limit"), "{err}");
    assert!(Detector::builtin("passport", Style::Full, 0).is_err());
}

#[test]
fn hash_canonical_forms_make_spellings_join() {
    let list = vec![Detector::builtin("card", Style::Hash, 0).expect("card")];
    let d = Detectors::new(list);
    let mut counts = vec![0];
    let a = d.redact("4111 1111 1111 1111", &masker(), &mut counts);
    let b = d.redact("4111111111111111", &masker(), &mut counts);
    assert_eq!(a, b);
    assert_eq!(counts, vec![2]);
}

#[test]
fn hashes_in_text_are_written_in_place_of_their_own_values() {
    let list = vec![
        Detector::builtin("email", Style::Hash, 0).expect("email"),
        Detector::builtin("card", Style::Partial, 1).expect("card"),
    ];
    let d = Detectors::new(list);
    let m = masker();
    let mut counts = vec![0, 0];
    let out = d.redact(
        "Grüße an Jörg.X@example.com, card 4111 1111 1111 1111 ✓ and bob@example.org",
        &m,
        &mut counts,
    );
    let expected = format!(
        "Grüße an {}, card ****1111 ✓ and {}",
        m.mask(Style::Hash, "jörg.x@example.com"),
        m.mask(Style::Hash, "bob@example.org")
    );
    assert_eq!(out.as_deref(), Some(expected.as_str()));
    assert_eq!(counts, vec![2, 1]);
}

#[test]
fn non_ascii_text_is_handled() {
    assert_eq!(run("Grüße an jörg@example.com ✓").0, "Grüße an [X] ✓");
}

#[test]
fn cards_split_by_spaces_or_dashes_but_not_both() {
    assert_eq!(run("a 4111 1111 1111 1111 b").0, "a [X] b");
    assert_eq!(run("a 4111-1111-1111-1111 b").0, "a [X] b");
    assert_eq!(run("3782 822463 10005").0, "[X]", "uneven groups");
    // One card has one kind of separator: the mixed run is not a card.
    assert_eq!(run("4111 1111-1111 1111").1, vec![]);
    // Double spaces end a run.
    assert_eq!(run("4111  1111 1111 1111").1, vec![]);
    // Luhn: one digit changed anywhere is no longer a card.
    assert_eq!(run("4111 1111 1111 1121").1, vec![]);
    assert_eq!(
        run("4111111111111111 4111111111111111").1,
        vec![("card", 2)]
    );
}

#[test]
fn long_digit_runs_that_are_not_cards() {
    let long = "1".repeat(5000);
    assert_eq!(run(&long).1, vec![]);
    let grouped = "1234 ".repeat(1000);
    assert_eq!(run(&grouped).1, vec![]);
    // A card at the end of a long run of groups is still found.
    let mut tail = "12 ".repeat(500);
    tail.push_str("4111 1111 1111 1111");
    assert_eq!(run(&tail).1, vec![("card", 1)]);
}

#[test]
fn emails_at_the_edges_of_the_text() {
    assert_eq!(run("a@example.com").0, "[X]");
    assert_eq!(run("a@example.com.").0, "[X].");
    assert_eq!(run("<a@example.com>").0, "<[X]>");
    assert_eq!(run("x a@b.co").0, "x [X]");
    // The match ends after the letters of the last label that starts with two.
    assert_eq!(run("a@example.com1").0, "[X]1");
    assert_eq!(run("a@b.cd1.ef").0, "[X]");
    assert_eq!(run("@example.com a@").1, vec![]);
}

#[test]
fn unicode_around_and_inside_matches() {
    assert_eq!(run("é4111 1111 1111 1111é").0, "é[X]é");
    assert_eq!(run("日本 203.0.113.7 日本").0, "日本 [X] 日本");
    assert_eq!(run("✓+44 20 7946 0958✓").0, "✓[X]✓");
    // Unicode letters are part of an address: the regex decides in non-ASCII text.
    assert_eq!(run("mail ÉVE@EXAMPLE.COM").0, "mail [X]");
    let list = vec![Detector::builtin("email", Style::Hash, 0).expect("email")];
    let mut counts = vec![0];
    let upper = Detectors::new(list.clone()).redact("ÉVE@EXAMPLE.COM", &masker(), &mut counts);
    let lower = Detectors::new(list).redact("éve@example.com", &masker(), &mut counts);
    assert_eq!(upper, lower, "hashed lower case");
}

#[test]
fn the_first_look_never_skips_a_text_a_detector_would_match() {
    // For every built-in detector and texts of every mix of classes: whenever the exact gate
    // lets a text through, so does the presence table.
    let pieces = ["1", "@", "+", ".", ":", "-", "12345678901234", "a"];
    for (i, name) in BUILTIN.iter().enumerate() {
        let d = Detectors::new(vec![
            Detector::builtin(name, Style::Full, i).expect("builtin"),
        ]);
        for mix in 0..(1u32 << pieces.len()) {
            let text: String = pieces
                .iter()
                .enumerate()
                .filter(|(bit, _)| mix >> bit & 1 == 1)
                .map(|(_, p)| *p)
                .collect();
            let seen = Features::of(&text);
            let gate = d.list.iter().any(|det| det.gate(&seen, text.len()));
            assert!(!gate || d.may_match(&seen), "{name} on {text:?}");
        }
    }
    let none = Detectors::new(Vec::new());
    assert!(!none.may_match(&Features::of("1@+.:-")));
    let custom = Detectors::new(vec![Detector::custom("x", Style::Full, 0).expect("custom")]);
    assert!(custom.may_match(&Features::of("")));
}
