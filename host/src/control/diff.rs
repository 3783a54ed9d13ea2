//! Line diffs of config text, as `diff -u` prints them.

/// A unified diff from `old` to `new` with three lines of context; empty when they are equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines_only_when_they_differ() {
        assert_eq!(unified("a\n", "a\n", "x", "y"), "");
        let d = unified(
            "a = 1\nb = 2\n",
            "a = 1\nb = 3\n",
            "revision 1",
            "revision 2",
        );
        assert!(d.contains("--- revision 1"), "{d}");
        assert!(d.contains("-b = 2\n+b = 3"), "{d}");
    }
}
